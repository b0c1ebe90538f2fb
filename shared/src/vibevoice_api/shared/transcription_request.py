"""The transcription/translation request, declared once.

Both request forms parse into :class:`TranscriptionRequest`: the multipart form OpenAI documents
(:meth:`~TranscriptionRequest.from_form_fields`) and Open WebUI's JSON body with base64
``input_audio`` (:meth:`~TranscriptionRequest.from_json`). The audio itself stays out of the model
(the service streams it from disk); everything else is a field with its type, bounds and
validators, and the OpenAPI request bodies are generated from it (:func:`form_schema`).

A list-typed field is an array field: a form sends it as repeated ``name[]`` parts (OpenAI's
spelling) or ``name`` parts, JSON as a list or a single value. Adding one is adding a field.

Every validation failure becomes one OpenAI 400 naming the parameter (:func:`request_error`).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from .errors import InvalidRequestError, validation_error_to_api_error
from .languages import normalize_language

TRANSCRIPTION_FORMATS: tuple[str, ...] = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
TRANSLATION_FORMATS: tuple[str, ...] = ("json", "text", "srt", "verbose_json", "vtt")
MAX_PROMPT_CHARS = 4096
MAX_KEYWORDS = 100
MAX_KEYWORD_CHARS = 200
MAX_KNOWN_SPEAKERS = 4
SERVER_VAD_KEYS = ("type", "prefix_padding_ms", "silence_duration_ms", "threshold")
Task = Literal["transcribe", "translate"]


def _blank_to(default: Any) -> Callable[[Any], Any]:
    """A before-validator: an absent or empty form value means ``default``."""

    def convert(value: Any) -> Any:
        return default if value is None or value == "" else value

    return convert


def _array(description: str) -> Any:
    """An array field: empty when the client sends none of it."""
    return Field(default_factory=list, description=description)


def _format_name(value: Any) -> Any:
    return "json" if value is None or value == "" else value.strip().lower() if isinstance(value, str) else value


class InputAudio(BaseModel):
    """Open WebUI's JSON request form: base64 audio plus a format hint."""

    model_config = ConfigDict(extra="allow")
    data: str = Field(..., description="Base64-encoded audio bytes.")
    format: str | None = Field(None, max_length=32, description="wav, mp3, ogg, webm, flac, m4a, pcm, ...")


class TranscriptionRequest(BaseModel):
    """``POST /v1/audio/transcriptions`` and ``/translations``: every field but the audio."""

    model_config = ConfigDict(extra="ignore")  # unknown fields are ignored (clients send extras)

    task: Task = Field("transcribe", description="From the path; never read from the client.")
    response_format: Annotated[Literal[TRANSCRIPTION_FORMATS], BeforeValidator(_format_name)] = Field(  # type: ignore[valid-type]
        "json", description="json, text, srt, verbose_json, vtt, diarized_json (transcriptions only)."
    )
    language: str | None = Field(None, description="ISO-639-1 hint, e.g. en (transcriptions only).")
    timestamp_granularities: list[Literal["segment", "word"]] = _array(
        "segment and/or word; needs response_format=verbose_json."
    )
    chunking_strategy: str | dict[str, Any] | None = Field(
        None,
        description="'auto' or {type: server_vad, prefix_padding_ms, silence_duration_ms, threshold} (a JSON "
        "object, or chunking_strategy[key] form fields). Audio longer than one pass "
        "(VIBEVOICE_ASR_MAX_SINGLE_PASS_SECONDS) is cut in pauses server_vad finds, else at its quietest moments.",
    )
    model: str | None = Field(None, description="vibevoice-asr or an alias (whisper-1, ...).")
    prompt: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="Context or hotwords (names, terms) for the model."
    )
    temperature: Annotated[float, BeforeValidator(_blank_to(0.0))] = Field(0.0, ge=0, le=1, allow_inf_nan=False)
    stream: Annotated[bool, BeforeValidator(_blank_to(False))] = Field(
        False, description="Server-sent transcript.text.* events instead of one answer."
    )
    input_audio: InputAudio | None = Field(None, description="JSON body only: the audio, base64.")
    keywords: list[str] = _array(
        f"Words to listen for (names, jargon), up to {MAX_KEYWORDS}: hotwords in the model's prompt, "
        "one a line after `prompt`."
    )
    languages: list[str] = _array("Candidate ISO-639-1 codes: a language hint; `languages` in the answer.")
    include: list[Literal["logprobs"]] = _array(
        "logprobs: the log-probabilities of the transcript's tokens (response_format json, or stream)."
    )
    known_speaker_names: list[str] = _array(
        f"Up to {MAX_KNOWN_SPEAKERS} names for known_speaker_references[] (same order): diarized "
        "speakers whose voice matches a reference take its name."
    )
    known_speaker_references: list[str] = _array("Data URLs (data:audio/wav;base64,...) of 2-10 s clips, one per name.")

    #: Fields a client never sends as form fields (the path's task; the JSON body's audio).
    NOT_FORM_FIELDS: ClassVar[tuple[str, ...]] = ("task", "input_audio")
    #: Object fields a form may spell as ``name[key]`` parts (OpenAI's client does), with their keys.
    FORM_OBJECTS: ClassVar[dict[str, tuple[str, ...]]] = {"chunking_strategy": SERVER_VAD_KEYS}

    @field_validator("response_format")
    @classmethod
    def _format_for_task(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("task") == "translate" and value not in TRANSLATION_FORMATS:
            raise PydanticCustomError(
                "invalid_value",
                f"Invalid 'response_format' {value!r}: use one of {', '.join(TRANSLATION_FORMATS)}.",
            )
        return value

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any, info: ValidationInfo) -> str | None:
        if info.data.get("task") == "translate" or value is None or value == "":
            return None  # translations are always into English
        if not isinstance(value, str):
            raise PydanticCustomError("invalid_type", "'language' must be a string.")
        code = normalize_language(value)
        if code is None:
            raise PydanticCustomError(
                "unsupported_language", f"Unsupported language {value!r}: use an ISO-639-1 code such as en, de, ko."
            )
        return code

    @field_validator("timestamp_granularities")
    @classmethod
    def _granularities(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if value and info.data.get("response_format") != "verbose_json":
            raise PydanticCustomError("invalid_value", "timestamp_granularities requires response_format=verbose_json.")
        if "word" in value and (info.context or {}).get("word_timestamps") == "error":
            raise PydanticCustomError(
                "unsupported_value", "Word timestamps are not available: VibeVoice-ASR times segments, not words."
            )
        return value

    @field_validator("chunking_strategy", mode="before")
    @classmethod
    def _chunking(cls, value: Any) -> Any:
        if value in (None, "", "auto"):
            return value or None
        try:
            obj = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            raise PydanticCustomError("invalid_value", "'chunking_strategy' must be 'auto' or a JSON object.") from None
        if not isinstance(obj, dict) or obj.get("type") not in ("server_vad", "auto", None):
            raise PydanticCustomError(
                "invalid_value", "'chunking_strategy' must be 'auto' or {\"type\": \"server_vad\", ...}."
            )
        return _server_vad(obj)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        return (value.replace("\x00", "").strip() or None) if value is not None else None

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        words = [" ".join(w.replace("\x00", "").split()) for w in value]
        if len(words) > MAX_KEYWORDS:
            raise PydanticCustomError("invalid_value", f"At most {MAX_KEYWORDS} keywords are accepted.")
        if any(len(w) > MAX_KEYWORD_CHARS for w in words):
            raise PydanticCustomError("invalid_value", f"Each keyword is at most {MAX_KEYWORD_CHARS} characters.")
        return [w for w in words if w]

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str], info: ValidationInfo) -> list[str]:
        codes = []
        for item in value:
            code = normalize_language(item)
            if code is None:
                raise PydanticCustomError(
                    "unsupported_language", f"Unsupported language {item!r}: use ISO-639-1 codes such as en, de, ko."
                )
            codes.append(code)
        return [] if info.data.get("task") == "translate" else list(dict.fromkeys(codes))

    @field_validator("include")
    @classmethod
    def _include(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if "logprobs" in value and not info.data.get("stream") and info.data.get("response_format") != "json":
            raise PydanticCustomError(
                "invalid_value", "include[]=logprobs needs response_format=json (or stream=true)."
            )
        return list(dict.fromkeys(value))

    @field_validator("known_speaker_names")
    @classmethod
    def _known_names(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_KNOWN_SPEAKERS:
            raise PydanticCustomError(
                "too_many_known_speakers",
                f"At most {MAX_KNOWN_SPEAKERS} known speakers are supported (got {len(value)}).",
            )
        return value

    @field_validator("known_speaker_references")
    @classmethod
    def _known_references(cls, value: list[str], info: ValidationInfo) -> list[str]:
        names = info.data.get("known_speaker_names")
        if names is not None and len(value) != len(names):
            raise PydanticCustomError(
                "known_speakers_mismatch",
                f"known_speaker_names has {len(names)} items but known_speaker_references has {len(value)}: "
                "give one reference clip per name.",
            )
        return value

    @property
    def granularities(self) -> list[str]:
        """The timestamp granularities asked for (segment when none)."""
        return self.timestamp_granularities or ["segment"]

    @classmethod
    def array_fields(cls) -> list[str]:
        return [name for name, f in cls.model_fields.items() if typing.get_origin(f.annotation) is list]

    @classmethod
    def from_form_fields(
        cls, task: Task, get: Callable[[str], Any], getlist: Callable[[str], list[Any]], **context: Any
    ) -> TranscriptionRequest:
        """Parse a multipart form (``get`` one field, ``getlist`` every part of a name)."""
        raw: dict[str, Any] = {}
        for name in cls.model_fields:
            if name in cls.NOT_FORM_FIELDS:
                continue
            if name in cls.array_fields():
                values = [v for v in getlist(f"{name}[]") + getlist(name) if v not in (None, "")]
                if values:
                    raw[name] = values
            elif (value := get(name)) is not None:
                raw[name] = value
            elif name in cls.FORM_OBJECTS:
                parts = {k: v for k in cls.FORM_OBJECTS[name] if (v := get(f"{name}[{k}]")) is not None}
                if parts:
                    raw[name] = parts
        return cls.parse(task, raw, context)

    @classmethod
    def from_json(cls, task: Task, data: dict[str, Any], **context: Any) -> TranscriptionRequest:
        """Parse Open WebUI's JSON body (``input_audio`` required)."""
        if data.get("input_audio") is None:
            raise InvalidRequestError(
                "Missing required parameter: 'input_audio'.", param="input_audio", code="missing_required_parameter"
            )
        raw = {k: v for k, v in data.items() if k != "task"}
        for name in cls.array_fields():
            if name in raw and not isinstance(raw[name], list):
                raw[name] = [] if raw[name] is None else [raw[name]]
        return cls.parse(task, raw, context)

    @classmethod
    def parse(cls, task: Task, raw: dict[str, Any], context: dict[str, Any]) -> TranscriptionRequest:
        try:
            return cls.model_validate({"task": task, **raw}, context=context)
        except ValidationError as exc:
            raise request_error(exc, task) from exc


# --------------------------------------------------------------------------------------------
# Errors: the message and code a client gets for a field that fails its declared type or bounds
# (validators above raise their own). Keys: (field, pydantic error type); None matches any.

_MESSAGES: dict[tuple[str | None, str | None], tuple[str, str]] = {
    ("response_format", None): ("Invalid 'response_format' {input!r}: use one of {choices}.", "invalid_value"),
    ("temperature", "float_parsing"): ("'temperature' must be a number between 0 and 1.", "invalid_value"),
    ("temperature", None): ("'temperature' must be between 0 and 1 (got {input}).", "invalid_value"),
    ("timestamp_granularities", None): (
        "Invalid timestamp granularity {input!r}: use segment or word.",
        "invalid_value",
    ),
    ("stream", None): ("Invalid value for 'stream': expected true or false.", "invalid_value"),
    ("include", None): ("Unknown include value {input!r}: use one of {choices}.", "invalid_value"),
    ("prompt", "string_too_long"): ("'prompt' is longer than {max_length} characters.", "string_above_max_length"),
    (None, "string_type"): ("'{param}' must be a string.", "invalid_type"),
}


def request_error(exc: ValidationError, task: Task = "transcribe") -> InvalidRequestError:
    """The OpenAI 400 for the first failing field of a :class:`TranscriptionRequest`."""
    errors = exc.errors()
    first = errors[0]
    loc = [str(p) for p in first["loc"] if not isinstance(p, int)]
    field, param = (loc[0] if loc else None), ".".join(loc) or None
    if first["type"] in (
        "invalid_value",
        "invalid_type",
        "unsupported_language",
        "unsupported_value",
        "too_many_known_speakers",
        "known_speakers_mismatch",
    ):
        return InvalidRequestError(first["msg"], param=param, code=first["type"])
    entry = (
        _MESSAGES.get((field, first["type"])) or _MESSAGES.get((field, None)) or _MESSAGES.get((None, first["type"]))
    )
    if entry is None or field not in TranscriptionRequest.model_fields:
        return validation_error_to_api_error(list(errors))  # type: ignore[arg-type]
    choices = ", ".join(_literal_values(TranscriptionRequest.model_fields[field].annotation))
    message = entry[0].format(input=first.get("input"), param=param, choices=choices, **(first.get("ctx") or {}))
    return InvalidRequestError(message, param=param, code=entry[1])


def _server_vad(obj: dict[str, Any]) -> dict[str, Any]:
    """A server_vad object with its numbers checked (form fields arrive as text)."""
    unknown = set(obj) - set(SERVER_VAD_KEYS)
    if unknown:
        raise PydanticCustomError(
            "invalid_value", f"Unknown chunking_strategy keys {sorted(unknown)}: use {', '.join(SERVER_VAD_KEYS)}."
        )
    out: dict[str, Any] = {"type": obj.get("type") or "server_vad"}
    for key, kind, lo, hi in (
        ("prefix_padding_ms", int, 0, 60_000),
        ("silence_duration_ms", int, 0, 60_000),
        ("threshold", float, 0.0, 1.0),
    ):
        if obj.get(key) in (None, ""):
            continue
        try:
            number = kind(float(obj[key])) if kind is int else float(obj[key])
        except (TypeError, ValueError):
            raise PydanticCustomError("invalid_value", f"chunking_strategy.{key} must be a number.") from None
        if not lo <= number <= hi:
            raise PydanticCustomError("invalid_value", f"chunking_strategy.{key} must be between {lo} and {hi}.")
        out[key] = number
    return out


def _literal_values(annotation: Any) -> Iterable[str]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return [str(a) for a in args]
    return [v for a in args for v in _literal_values(a)]


# --------------------------------------------------------------------------------------------
# OpenAPI: the request bodies, generated from the model.

NESTED_MODELS: tuple[type[BaseModel], ...] = (InputAudio,)


def form_schema(*, translation: bool = False) -> dict[str, Any]:
    """The multipart form and the JSON body of ``/v1/audio/transcriptions`` (or translations).

    Nested models are ``$ref``s into ``components/schemas`` (:data:`NESTED_MODELS` must be registered there).
    """
    schema = TranscriptionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    props: dict[str, Any] = dict(schema["properties"])
    props.pop("task")
    if translation:
        props.pop("language")
        props["response_format"] = {**props["response_format"], "enum": list(TRANSLATION_FORMATS)}
    form = {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "Audio: wav, mp3, m4a, ogg/opus, flac, webm, mp4, pcm.",
        },
        **{
            f"{name}[]" if name in TranscriptionRequest.array_fields() else name: _never_null(prop)
            for name, prop in props.items()
            if name not in TranscriptionRequest.NOT_FORM_FIELDS
        },
    }
    body = {"type": "object", "required": ["input_audio"], "properties": props}
    return {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": form}},
        "application/json": {"schema": body},
    }


def _never_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A form part is text, never null: ``anyOf: [X, null]`` becomes X (keeping description and default)."""
    options = [o for o in prop.get("anyOf", ()) if o.get("type") != "null"]
    if len(options) > 1:  # and a part is text: a JSON object travels as a string
        options = [o for o in options if o.get("type") == "string"]
    if "anyOf" not in prop or len(options) != 1:
        return prop
    rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default") or (k == "default" and v is not None)}
    return {**options[0], **rest}
