"""Live session settings (``VIBEVOICE_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field, field_validator
from vibevoice_api.shared.settings import CommaList, UpstreamSettings, split_commas

from .names import REALTIME_MODEL_PATTERNS, TRANSCRIPTION_MODEL_PATTERNS

FAILURE_SENTENCE = "Sorry, that request failed. You can ask me to try again."


class LiveSettings(UpstreamSettings):
    """The live service: also reads VIBEVOICE_ASR_URL, _TTS_URL, _UPSTREAM_API_KEY, _CONNECT_TIMEOUT."""

    live_asr_model: str = Field("vibevoice-asr", description="Model id sent to the ASR service.")
    live_tts_model: str = Field("vibevoice-realtime", description="Model id sent to the TTS service.")
    live_models: CommaList = Field(
        default_factory=lambda: list(REALTIME_MODEL_PATTERNS),
        description="Realtime model names accepted (comma-separated fnmatch patterns).",
    )
    live_transcription_models: CommaList = Field(
        default_factory=lambda: list(TRANSCRIPTION_MODEL_PATTERNS),
        description="Transcription model names accepted (comma-separated fnmatch patterns).",
    )
    live_default_voice: str = Field("marin", description="Voice of a realtime session that names none.")
    live_max_sessions: int = Field(200, ge=1, description="Sessions open at once; more are refused with an error.")
    live_max_session_seconds: float = Field(3600.0, gt=0, description="Longest session; then session_expired.")
    live_idle_timeout_seconds: float = Field(
        600.0,
        gt=0,
        description="A session with no client event and no job running for this long ends "
        "(session_idle_timeout error, close).",
    )
    live_max_event_kb: int = Field(2048, ge=16, description="Largest client event (JSON text), KiB.")
    live_max_append_kb: int = Field(1024, ge=1, description="Largest audio in one input_audio_buffer.append, KiB.")
    live_max_buffer_seconds: float = Field(
        120.0, gt=0, description="Most uncommitted input audio a session holds (appends beyond are refused)."
    )
    live_max_items: int = Field(256, ge=8, description="Conversation items kept per session (oldest dropped).")
    live_max_pending_transcriptions: int = Field(
        8, ge=1, description="Committed turns awaiting transcription per session; beyond, a turn fails at once."
    )
    live_send_timeout_seconds: float = Field(
        30.0, gt=0, description="A client that takes longer than this to accept an event is disconnected."
    )
    live_tts_chunk_chars: int = Field(
        300, ge=40, description="Answers are spoken in sentence groups of about this many characters."
    )
    live_failure_sentence: str = Field(FAILURE_SENTENCE, description="Spoken when a tool result says failed.")
    upstream_timeout: float = Field(300.0, gt=0, description="Seconds a service may stay silent mid-job.")

    _split_live = field_validator("live_models", "live_transcription_models", mode="before")(split_commas)
