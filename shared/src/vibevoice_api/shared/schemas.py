"""OpenAI audio API wire schemas (pydantic v2).

Shapes follow openai-python's generated types so that the official SDK parses our responses
into its own models; our additions (a ``speaker`` per segment) are extra fields OpenAI
clients ignore.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .formats import SPEECH_FORMATS, SpeechFormat

# --------------------------------------------------------------------------------------------
# Errors (every failure, every process)


class ErrorDetail(BaseModel):
    """OpenAI's error object: every key present, null where unknown."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """What every failed request gets back (with a meaningful HTTP status)."""

    error: ErrorDetail


# --------------------------------------------------------------------------------------------
# Speech (TTS); streamed events: events.py


class VoiceRef(BaseModel):
    """OpenAI's custom voice object form: ``{"id": "voice_1234"}``."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=128)


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech``. Unknown fields are accepted (Open WebUI merges admin params in)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"model": "vibevoice-realtime", "input": "Hello there!", "voice": "carter"}]},
    )

    model: str = Field(
        "vibevoice-realtime", max_length=256, description="vibevoice-realtime, or an alias such as tts-1."
    )
    input: str = Field(
        ..., min_length=1, description="Text to speak, 1 to 4096 characters (more if the server allows)."
    )
    voice: str | VoiceRef = Field(
        "carter", description="A preset name (en-Carter_man, carter), an OpenAI voice name (mapped), or {'id': ...}."
    )
    response_format: SpeechFormat = Field(
        "mp3", description=" | ".join(SPEECH_FORMATS) + " (pcm: 24 kHz s16le mono, no header)."
    )
    speed: float = Field(1.0, ge=0.25, le=4.0, description="0.25 to 4.0; pitch-preserving tempo change.")
    instructions: str | None = Field(None, max_length=4096, description="Accepted for compatibility; see README.")
    stream_format: Literal["audio", "sse"] = Field("audio", description="audio (chunked bytes) or sse events.")
    seed: int | None = Field(
        None,
        ge=0,
        le=2**63 - 1,
        description="vibevoice-api extension: seeds this request's sampling, so the same input, voice and seed "
        "give the same audio (alone or batched with others). Random when absent.",
    )

    @field_validator("response_format", mode="before")
    @classmethod
    def _fmt_lower(cls, v: Any) -> Any:
        return v.lower().strip() if isinstance(v, str) else v

    @field_validator("voice", mode="before")
    @classmethod
    def _voice(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip()
            if not v:
                raise ValueError("voice must not be empty")
            if len(v) > 128:
                raise ValueError("voice name is too long (max 128 characters)")
        return v

    @property
    def voice_name(self) -> str:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice


# --------------------------------------------------------------------------------------------
# Transcription / translation (ASR)

# The request: transcription_request.py. Streamed events: events.py.


class UsageDuration(BaseModel):
    """Usage of whisper-style models: seconds of audio."""

    type: Literal["duration"] = "duration"
    seconds: float


class InputTokenDetails(BaseModel):
    audio_tokens: int
    text_tokens: int


class UsageTokens(BaseModel):
    """Usage of gpt-*-transcribe models: tokens read (audio and prompt text) and written."""

    type: Literal["tokens"] = "tokens"
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_token_details: InputTokenDetails


class Logprob(BaseModel):
    """One generation step's share of the transcript text (``include[]=logprobs``)."""

    token: str
    logprob: float
    bytes: list[int]


class Language(BaseModel):
    code: str


class TranscriptionJSON(BaseModel):
    """``response_format=json``: OpenAI's ``Transcription``."""

    text: str
    languages: list[Language] | None = None
    logprobs: list[Logprob] | None = None
    usage: UsageDuration | UsageTokens | None = None


class TranscriptionWord(BaseModel):
    word: str
    start: float
    end: float


class TranscriptionSegment(BaseModel):
    """OpenAI's verbose segment, plus ``speaker`` (our diarization)."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float | None  # null when the generation gave no log-probabilities
    compression_ratio: float
    no_speech_prob: float | None  # measured by a voice activity detector (asr/no_speech.py)
    speaker: str | None = None


class TranscriptionVerbose(BaseModel):
    task: Literal["transcribe", "translate"] = "transcribe"
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment]
    words: list[TranscriptionWord] | None = None
    usage: UsageDuration | UsageTokens | None = None


class DiarizedSegment(BaseModel):
    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    start: float
    end: float
    text: str
    speaker: str


class TranscriptionDiarized(BaseModel):
    task: Literal["transcribe"] = "transcribe"
    duration: float
    text: str
    segments: list[DiarizedSegment]
    usage: UsageDuration | UsageTokens | None = None


# --------------------------------------------------------------------------------------------
# Discovery


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "vibevoice-api"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class AudioModel(BaseModel):
    id: str
    name: str | None = None


class AudioModelList(BaseModel):
    """Open WebUI's ``GET /audio/models`` shape."""

    models: list[AudioModel]


class Voice(BaseModel):
    id: str
    name: str
    language: str | None = None
    gender: str | None = None


class VoiceList(BaseModel):
    """Open WebUI's ``GET /audio/voices`` shape."""

    voices: list[Voice]
