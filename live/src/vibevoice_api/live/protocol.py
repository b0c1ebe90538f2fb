"""Session configuration of the Realtime API (GA ``session.update`` and the beta shapes), and event helpers.

Parsing is strict about the fields we act on (types, ranges, formats, model and language names) and
ignores fields that only steer an LLM we do not have (``max_output_tokens``, ``tracing``, ...).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from vibevoice_api.shared.languages import normalize_language

from .audio import FORMATS, LEGACY_FORMATS, InputFormat
from .names import matches
from .vad import VADConfig

MAX_PROMPT_CHARS = 4096
LOGPROBS_INCLUDE = "item.input_audio_transcription.logprobs"


class ProtocolError(Exception):
    """A client event we refuse; becomes an ``error`` event (the session stays open)."""

    def __init__(self, message: str, *, code: str = "invalid_value", param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


# ----------------------------------------------------------------------------- wire models


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FormatIn(_Model):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
    rate: int | None = None


class TranscriptionIn(_Model):
    model: str | None = None
    language: str | None = None
    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)


class TurnDetectionIn(_Model):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(None, ge=0, le=10_000)
    silence_duration_ms: int | None = Field(None, ge=0, le=10_000)
    idle_timeout_ms: int | None = Field(None, ge=1000, le=600_000)
    create_response: bool | None = None
    interrupt_response: bool | None = None
    eagerness: Literal["low", "medium", "high", "auto"] | None = None


class AudioInputIn(_Model):
    format: FormatIn | None = None
    transcription: TranscriptionIn | None = None
    turn_detection: TurnDetectionIn | None = None
    noise_reduction: dict[str, Any] | None = None


class FormatOut(_Model):
    type: Literal["audio/pcm"]
    rate: int | None = None


class AudioOutputIn(_Model):
    format: FormatOut | None = None
    voice: str | None = Field(None, min_length=1, max_length=200)
    speed: float | None = Field(None, ge=0.25, le=4.0)


class AudioIn(_Model):
    input: AudioInputIn | None = None
    output: AudioOutputIn | None = None


class ToolIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["function", "mcp"] = "function"
    name: str | None = Field(None, max_length=256)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class SessionIn(_Model):
    type: Literal["realtime", "transcription"] | None = None
    model: str | None = None
    audio: AudioIn | None = None
    include: list[str] | None = None
    instructions: str | None = Field(None, max_length=200_000)
    tools: list[ToolIn] | None = Field(None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    output_modalities: list[Literal["audio", "text"]] | None = None
    # beta (``transcription_session.update`` / pre-GA ``session.update``) names
    input_audio_format: str | None = None
    output_audio_format: str | None = None
    input_audio_transcription: TranscriptionIn | None = None
    turn_detection: TurnDetectionIn | None = None
    voice: str | None = Field(None, min_length=1, max_length=200)
    speed: float | None = Field(None, ge=0.25, le=4.0)
    modalities: list[Literal["audio", "text"]] | None = None


# ----------------------------------------------------------------------------- session state


@dataclass
class SessionConfig:
    type: str  # "realtime" | "transcription"
    model: str
    input_format: InputFormat = field(default_factory=lambda: FORMATS["audio/pcm"])
    transcription_model: str = "vibevoice-asr"
    language: str | None = None
    prompt: str | None = None
    vad: VADConfig | None = field(default_factory=VADConfig)
    create_response: bool = True
    interrupt_response: bool = True
    include: list[str] = field(default_factory=list)
    voice: str = "marin"
    speed: float = 1.0
    instructions: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    output_modalities: list[str] = field(default_factory=lambda: ["audio"])

    def public(self, session_id: str, expires_at: int) -> dict[str, Any]:
        """The ``session`` object of ``session.created`` / ``session.updated``."""
        fmt = {"type": self.input_format.type, "rate": self.input_format.rate}
        td = None
        if self.vad is not None:
            td = {
                "type": "server_vad",
                "threshold": self.vad.threshold,
                "prefix_padding_ms": self.vad.prefix_padding_ms,
                "silence_duration_ms": self.vad.silence_duration_ms,
                "idle_timeout_ms": self.vad.idle_timeout_ms,
            }
            if self.type == "realtime":
                td.update(create_response=self.create_response, interrupt_response=self.interrupt_response)
        audio_in = {
            "format": fmt,
            "transcription": {"model": self.transcription_model, "language": self.language, "prompt": self.prompt},
            "turn_detection": td,
            "noise_reduction": None,
        }
        if self.type == "transcription":
            return {
                "type": "transcription",
                "object": "realtime.transcription_session",
                "id": session_id,
                "expires_at": expires_at,
                "audio": {"input": audio_in},
                "include": list(self.include),
            }
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": self.model,
            "expires_at": expires_at,
            "output_modalities": list(self.output_modalities),
            "instructions": self.instructions,
            "audio": {
                "input": audio_in,
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": self.voice, "speed": self.speed},
            },
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "include": list(self.include),
        }


def _validation_message(exc: ValidationError, prefix: str) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    param = f"{prefix}.{loc}" if loc else prefix
    return f"Invalid '{param}': {err['msg']}.", param


def apply_update(
    cfg: SessionConfig, raw: Any, *, transcription_patterns: list[str], legacy_transcription: bool = False
) -> SessionConfig:
    """A new config from ``cfg`` and a ``session`` object; raises :class:`ProtocolError` on bad values."""
    if not isinstance(raw, dict):
        raise ProtocolError("'session' must be an object.", param="session")
    try:
        s = SessionIn.model_validate(raw)
    except ValidationError as exc:
        message, param = _validation_message(exc, "session")
        raise ProtocolError(message, param=param) from None
    new = replace(cfg)
    if legacy_transcription:
        new.type = "transcription"
    elif s.type is not None:
        new.type = s.type
    audio_in = s.audio.input if s.audio and s.audio.input else None
    _apply_format(new, audio_in, s.input_audio_format)
    tr = (audio_in.transcription if audio_in is not None else None) or s.input_audio_transcription
    if tr is not None:
        _apply_transcription(new, tr, transcription_patterns)
    if audio_in is not None and "turn_detection" in audio_in.model_fields_set:
        _apply_turn_detection(new, audio_in.turn_detection)
    elif "turn_detection" in s.model_fields_set:
        _apply_turn_detection(new, s.turn_detection)
    if s.include is not None:
        bad = [i for i in s.include if i != LOGPROBS_INCLUDE]
        if bad:
            raise ProtocolError(
                f"Unsupported include value {bad[0]!r}: only {LOGPROBS_INCLUDE!r}.", param="session.include"
            )
        new.include = list(s.include)
    _apply_output(new, s)
    return new


def _apply_format(new: SessionConfig, audio_in: AudioInputIn | None, legacy: str | None) -> None:
    if audio_in is not None and audio_in.format is not None:
        fmt = FORMATS[audio_in.format.type]
        if audio_in.format.rate not in (None, fmt.rate):
            raise ProtocolError(
                f"{fmt.type} input is {fmt.rate} Hz; rate {audio_in.format.rate} is not offered.",
                param="session.audio.input.format.rate",
            )
        new.input_format = fmt
    elif legacy is not None:
        name = LEGACY_FORMATS.get(legacy, legacy)
        if name not in FORMATS:
            raise ProtocolError(
                f"Unsupported input_audio_format {legacy!r}: use pcm16, g711_ulaw or g711_alaw.",
                param="session.input_audio_format",
            )
        new.input_format = FORMATS[name]


def _apply_transcription(new: SessionConfig, tr: TranscriptionIn, patterns: list[str]) -> None:
    if tr.model is not None:
        if not matches(tr.model, patterns):
            raise ProtocolError(
                f"The transcription model {tr.model!r} does not exist or you do not have access to it.",
                code="model_not_found",
                param="session.audio.input.transcription.model",
            )
        new.transcription_model = tr.model
    if tr.language is not None:
        code = normalize_language(tr.language) if tr.language.strip() else None
        if tr.language.strip() and code is None:
            raise ProtocolError(
                f"Unsupported language {tr.language!r}: use an ISO-639-1 code such as en, de, ko.",
                param="session.audio.input.transcription.language",
            )
        new.language = code
    if tr.prompt is not None:
        new.prompt = tr.prompt.replace("\x00", "").strip() or None


def _apply_turn_detection(new: SessionConfig, td: TurnDetectionIn | None) -> None:
    """``null`` turns server VAD off (the client commits); given fields change, the others stay."""
    if td is None:
        new.vad = None
        return
    base = new.vad or VADConfig()
    new.vad = VADConfig(
        threshold=base.threshold if td.threshold is None else td.threshold,
        prefix_padding_ms=base.prefix_padding_ms if td.prefix_padding_ms is None else td.prefix_padding_ms,
        silence_duration_ms=base.silence_duration_ms if td.silence_duration_ms is None else td.silence_duration_ms,
        idle_timeout_ms=td.idle_timeout_ms if "idle_timeout_ms" in td.model_fields_set else base.idle_timeout_ms,
    )
    if td.create_response is not None:
        new.create_response = td.create_response
    if td.interrupt_response is not None:
        new.interrupt_response = td.interrupt_response


def _apply_output(new: SessionConfig, s: SessionIn) -> None:
    """The realtime side: output format, voice, speed, instructions, tools."""
    out = s.audio.output if s.audio and s.audio.output else None
    if out is not None and out.format is not None and out.format.rate not in (None, 24000):
        raise ProtocolError("Output audio is audio/pcm at 24000 Hz only.", param="session.audio.output.format.rate")
    if s.output_audio_format not in (None, "pcm16", "audio/pcm"):
        raise ProtocolError("Output audio is pcm16 (24 kHz) only.", param="session.output_audio_format")
    voice = (out.voice if out else None) or s.voice
    if voice is not None:
        new.voice = voice.strip()
    speed = (out.speed if out else None) or s.speed
    if speed is not None:
        new.speed = speed
    if s.instructions is not None:
        new.instructions = s.instructions
    if s.tools is not None:
        new.tools = [t.model_dump(exclude_none=True) for t in s.tools]
    if s.tool_choice is not None:
        new.tool_choice = s.tool_choice
    modalities = s.output_modalities or s.modalities
    if modalities is not None:
        new.output_modalities = list(modalities)


# ----------------------------------------------------------------------------- answers without an LLM

_SAY_THIS = re.compile(r"^\s*say this\b[^:]*:\s*(?P<text>.+?)\s*$", re.IGNORECASE | re.DOTALL)


def say_this(instructions: Any) -> str | None:
    """The text of an instruction of the form "Say this briefly …: <text>" (Open WebUI's status lines)."""
    if not isinstance(instructions, str):
        return None
    m = _SAY_THIS.match(instructions)
    return m.group("text") if m else None


def pick_tool(tools: list[dict[str, Any]], tool_choice: Any) -> tuple[str, str] | None:
    """(tool name, its one string parameter) that can carry a user turn; None when no tool fits.

    ``generate_chat_completion`` (Open WebUI's chat delegate) wins; otherwise the first function tool
    whose parameters are a single required string.
    """
    if tool_choice == "none":
        return None
    forced = tool_choice.get("name") if isinstance(tool_choice, dict) else None
    candidates = []
    for t in tools:
        if t.get("type", "function") != "function" or not t.get("name"):
            continue
        if forced and t["name"] != forced:
            continue
        params = t.get("parameters") or {}
        props = params.get("properties") or {}
        strings = [k for k, v in props.items() if isinstance(v, dict) and v.get("type") == "string"]
        if len(props) == 1 and strings:
            candidates.append((t["name"], strings[0]))
    for name, param in candidates:
        if name == "generate_chat_completion":
            return name, param
    return candidates[0] if candidates else None


def answer_of(output: Any) -> tuple[str, str]:
    """(status, answer) of a ``function_call_output``: JSON ``{"status","answer"}`` or plain text."""
    if not isinstance(output, str):
        return "completed", ""
    try:
        obj = json.loads(output)
    except ValueError:
        return "completed", output
    if isinstance(obj, dict):
        status = obj.get("status") if isinstance(obj.get("status"), str) else "completed"
        answer = obj.get("answer")
        if not isinstance(answer, str):
            answer = obj.get("output") if isinstance(obj.get("output"), str) else ""
        return status, answer
    return "completed", obj if isinstance(obj, str) else output


def sentence_groups(text: str, max_chars: int) -> list[str]:
    """The text in pieces of whole sentences of about ``max_chars`` (long sentences cut at spaces)."""
    sentences = [s for s in re.split(r"(?<=[.!?。！？])\s+|\n+", text.strip()) if s.strip()]
    pieces: list[str] = []
    for s in sentences:
        s = s.strip()
        while len(s) > max_chars:
            cut = s.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            pieces.append(s[:cut].strip())
            s = s[cut:].strip()
        if pieces and len(pieces[-1]) + 1 + len(s) <= max_chars and len(pieces) > 1:
            pieces[-1] = pieces[-1] + " " + s
        elif s:
            pieces.append(s)
    return pieces
