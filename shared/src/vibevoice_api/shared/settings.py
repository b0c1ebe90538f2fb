"""Settings common to every process, read from ``VIBEVOICE_*`` environment variables.

Each app subclasses :class:`CommonSettings`; pydantic-settings does the parsing so that a
typo'd value fails at start-up with a message naming the variable.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


def split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def json_text(empty: Any) -> BeforeValidator:
    """For a setting given as JSON text in the environment: parse it (blank text means ``empty``).

    Use with ``NoDecode``: ``Annotated[dict[str, str], NoDecode, json_text({})]``.
    """

    def parse(value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else type(empty)(empty)
        return value

    return BeforeValidator(parse)


#: A JSON object of strings, from one environment variable.
JsonDict = Annotated[dict[str, str], NoDecode, json_text({})]


class CommonSettings(BaseSettings):
    """What the gateway and both services share: auth, CORS, logging, limits."""

    model_config = SettingsConfigDict(env_prefix="VIBEVOICE_", extra="ignore", populate_by_name=True)

    api_keys: CommaList = Field(
        default_factory=list, description="Accepted Bearer keys, comma-separated; empty = no auth."
    )
    public_discovery: bool = Field(
        True,
        description="Serve GET /v1/models, /v1/audio/models and /v1/audio/voices without a key "
        "(Open WebUI calls them without one).",
    )
    public_metrics: bool = Field(True, description="Serve /metrics without a key.")
    cors_origins: CommaList = Field(
        default_factory=list, description="Allowed CORS origins ('*' for any); empty = CORS off."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="debug | info | warning | error"
    )
    log_format: Literal["json", "text"] = Field("json", description="json (one object per line) or text.")
    shutdown_grace_seconds: float | None = Field(
        None,
        ge=0,
        description="On SIGTERM, how long requests in flight may finish (default: 60 s; ASR 120 s; live 10 s). "
        "Then what is still running is cancelled.",
    )
    max_upload_mb: float = Field(1024.0, gt=0, description="Largest accepted request body, in MiB.")
    stream_stall_seconds: float = Field(
        60.0,
        gt=0,
        description="A client that accepts no data of a streamed response (audio, SSE, WebSocket events) for this "
        "long is cut off: the stream ends and its job is cancelled.",
    )

    _split = field_validator("api_keys", "cors_origins", mode="before")(split_commas)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class UpstreamSettings(CommonSettings):
    """Where the model services are, for the processes that call them (the gateway and the live service)."""

    asr_url: str = Field("http://127.0.0.1:8081", description="Base URL of the ASR service; empty = no ASR.")
    tts_url: str = Field("http://127.0.0.1:8082", description="Base URL of the TTS service; empty = no TTS.")
    upstream_api_key: str = Field(
        "", description="Bearer key sent to the services (if they require one); empty = the client's own key."
    )
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect to a service.")
