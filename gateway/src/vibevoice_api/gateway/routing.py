"""Which service answers a request: by path kind (asr/tts) and by ``model`` name.

Model ids are learned from each service's ``/v1/models`` (refreshed lazily), seeded with the
default ids so routing works before the first discovery; aliases such as ``tts-1`` or
``whisper-1`` map to those ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import httpx
from vibevoice_api.shared.errors import InvalidRequestError, ModelNotFoundError, ServiceUnavailableError
from vibevoice_api.shared.model_names import ModelNames

from .settings import Backend, GatewaySettings

log = logging.getLogger("vibevoice_api.gateway.routing")

DEFAULT_MODEL = {"asr": "vibevoice-asr", "tts": "vibevoice-realtime"}
KIND_PATHS = {"asr": "/v1/audio/transcriptions", "tts": "/v1/audio/speech"}


@dataclass
class BackendState:
    backend: Backend
    models: list[str] = field(default_factory=list)
    reachable: bool | None = None
    last_error: str | None = None


class Router:
    def __init__(self, settings: GatewaySettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self.aliases = {k.lower(): v for k, v in settings.model_aliases.items()}
        self.names = ModelNames(settings.model_patterns)
        self.states = [BackendState(b, list(b.models) or [DEFAULT_MODEL[b.kind]]) for b in settings.all_backends()]
        self._refreshed_at = 0.0
        self._lock = asyncio.Lock()

    def backends(self, kind: str | None = None) -> list[BackendState]:
        return [s for s in self.states if kind is None or s.backend.kind == kind]

    def default(self, kind: str) -> BackendState:
        for s in self.states:
            if s.backend.kind == kind:
                return s
        raise ServiceUnavailableError(
            f"No {kind.upper()} service is configured on this gateway (set VIBEVOICE_{kind.upper()}_URL).",
            code="service_not_configured",
        )

    def known_models(self, kind: str | None = None) -> dict[str, BackendState]:
        out: dict[str, BackendState] = {}
        for s in self.backends(kind):
            for m in s.models:
                out.setdefault(m, s)
        return out

    async def fetch_models(self, state: BackendState) -> list[dict]:
        """GET a service's /v1/models; remembers its model ids for routing."""
        try:
            r = await self.client.get(
                state.backend.url + "/v1/models", timeout=self.settings.discovery_timeout, headers=self.upstream_auth()
            )
            r.raise_for_status()
            data = r.json().get("data", [])
            ids = [d["id"] for d in data if isinstance(d, dict) and isinstance(d.get("id"), str)]
            if ids:
                state.models = ids
            state.reachable, state.last_error = True, None
            return [d for d in data if isinstance(d, dict)]
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            state.reachable, state.last_error = False, f"{type(exc).__name__}: {exc}"
            log.info("model discovery failed for %s: %s", state.backend.name, state.last_error)
            return []

    async def refresh(self, min_interval: float = 2.0) -> None:
        async with self._lock:
            if time.monotonic() - self._refreshed_at < min_interval:
                return
            await asyncio.gather(*(self.fetch_models(s) for s in self.states))
            self._refreshed_at = time.monotonic()

    def upstream_auth(self) -> dict[str, str]:
        key = self.settings.upstream_api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    async def resolve(self, kind: str, model: str | None, *, realtime: bool = False) -> BackendState:
        """The backend for ``model`` on a ``kind`` path, or an OpenAI error.

        A model id or alias goes to the service serving it; otherwise a name matching the patterns of
        ``kind`` (and, on the realtime WebSocket, the realtime patterns) goes to that kind's service."""
        if model is None or not model.strip():
            return self.default(kind)
        name = model.strip()
        kinds = (kind, "realtime") if realtime else (kind,)
        target = self.aliases.get(name.lower(), name)
        for attempt in range(2):
            known = self.known_models()
            state = known.get(target)
            if state is not None:
                if state.backend.kind != kind:
                    other = (
                        "speech (POST /v1/audio/speech)"
                        if state.backend.kind == "tts"
                        else "transcription (POST /v1/audio/transcriptions)"
                    )
                    raise InvalidRequestError(
                        f"The model `{name}` is a {other} model and cannot be used on this endpoint.",
                        param="model",
                        code="model_not_supported",
                    )
                return state
            if attempt == 0 and not self.names.is_kind(name, *kinds):
                await self.refresh()
        if self.names.is_kind(name, *kinds):
            return self.default(kind)
        other = self.names.kind_of(name)
        if other is not None:
            what = "transcription" if other == "asr" else "speech" if other == "tts" else "realtime"
            raise InvalidRequestError(
                f"The model `{name}` is a {what} model and cannot be used on this endpoint.",
                param="model",
                code="model_not_supported",
            )
        if not self.settings.strict_models:
            return self.default(kind)
        available = sorted(
            set(self.known_models(kind)) | {a for a, t in self.aliases.items() if t in self.known_models(kind)}
        )
        raise ModelNotFoundError(name, available)
