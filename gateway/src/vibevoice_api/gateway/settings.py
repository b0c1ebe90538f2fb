"""Gateway settings (``VIBEVOICE_*`` environment variables)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode
from vibevoice_api.shared.model_names import DEFAULT_PATTERNS, ModelNames
from vibevoice_api.shared.settings import JsonDict, UpstreamSettings, json_text

DEFAULT_ALIASES: dict[str, str] = {
    "tts-1": "vibevoice-realtime",
    "tts-1-hd": "vibevoice-realtime",
    "gpt-4o-mini-tts": "vibevoice-realtime",
    "whisper-1": "vibevoice-asr",
    "gpt-4o-transcribe": "vibevoice-asr",
    "gpt-4o-mini-transcribe": "vibevoice-asr",
    "gpt-4o-transcribe-diarize": "vibevoice-asr",
}


class Backend(BaseModel):
    """One upstream service. ``kind`` decides which OpenAI paths it can serve."""

    name: str
    kind: str = Field(pattern="^(asr|tts)$")
    url: str
    models: list[str] = Field(
        default_factory=list, description="Model ids it serves; learned from its /v1/models when empty."
    )


class GatewaySettings(UpstreamSettings):
    live_url: str = Field(
        "http://127.0.0.1:8083",
        description="Base URL of the live service (realtime transcription sessions and voice calls); "
        "empty = none (realtime names then go to the TTS service's speech-only /v1/realtime).",
    )
    backends: Annotated[list[Backend], NoDecode, json_text([])] = Field(
        default_factory=list,
        description='Extra upstreams as JSON: [{"name":"tts-b","kind":"tts","url":"http://...","models":["my-tts"]}].',
    )
    model_aliases: JsonDict = Field(
        default_factory=lambda: dict(DEFAULT_ALIASES),
        description="JSON object alias → model id (replaces the defaults).",
    )
    tts_timeout: float = Field(300.0, gt=0, description="Seconds a TTS service may stay silent before 504.")
    asr_timeout: float = Field(1800.0, gt=0, description="Seconds an ASR service may stay silent before 504.")
    discovery_timeout: float = Field(3.0, gt=0, description="Seconds for /v1/models and /ready fan-out calls.")
    max_json_mb: float = Field(64.0, gt=0, description="Largest JSON body (speech requests, base64 audio).")
    pool_size: int = Field(100, ge=1, description="Keep-alive connections per service.")
    max_upload_mb: float = Field(2048.0, gt=0, description="Largest accepted request body, in MiB (413 beyond).")
    model_patterns: Annotated[dict[str, list[str]], NoDecode, json_text({})] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_PATTERNS.items()},
        description="JSON object kind → model-name patterns routed to that kind's service (* and ? wildcards, "
        'case-insensitive; replaces the defaults): {"asr": ["whisper-*", "gpt-*transcribe*"], '
        '"tts": ["tts-*", "gpt-*tts*"], "realtime": ["gpt-realtime*", "gpt-4o*-realtime*"]}. Keep the services\' '
        "VIBEVOICE_ASR_MODEL_PATTERNS / VIBEVOICE_TTS_MODEL_PATTERNS / VIBEVOICE_TTS_REALTIME_MODEL_PATTERNS in step.",
    )
    strict_models: bool = Field(True, description="Unknown model names get 404 (false: route by path only).")

    @field_validator("model_patterns")
    @classmethod
    def _check_patterns(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        ModelNames(v)  # unknown kinds or bad patterns fail at start-up
        return v

    def all_backends(self) -> list[Backend]:
        out = []
        if self.asr_url:
            out.append(Backend(name="asr", kind="asr", url=self.asr_url.rstrip("/")))
        if self.tts_url:
            out.append(Backend(name="tts", kind="tts", url=self.tts_url.rstrip("/")))
        out.extend(b.model_copy(update={"url": b.url.rstrip("/")}) for b in self.backends)
        return out
