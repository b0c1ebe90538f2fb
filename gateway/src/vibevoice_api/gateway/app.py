"""The gateway app: OpenAI audio paths routed to the ASR and TTS services.

``build_app`` only wires: the shared app shell, the route modules in ``routes/``, the unversioned
path aliases and the OpenAPI schema. The state (an :class:`~.upstream.Upstream` holding the pooled
client and the model router) lives on ``app.state`` for the app's lifetime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from vibevoice_api.shared.app import create_app
from vibevoice_api.shared.openapi import install_openapi

from .routes import discovery, health, playground, realtime, speech, transcription
from .settings import GatewaySettings
from .upstream import Upstream

#: Forgiving aliases for clients configured without the /v1 prefix (a common Open WebUI mistake).
UNVERSIONED = discovery.API_PATHS


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.upstream = Upstream(app.state.settings)
    try:
        yield
    finally:
        await app.state.upstream.aclose()


def build_app(settings: GatewaySettings | None = None) -> FastAPI:
    app = create_app(
        title="vibevoice-api gateway",
        service="gateway",
        settings=settings or GatewaySettings(),
        readiness=health.services_readiness,
        lifespan=lifespan,
        description="OpenAI-compatible speech API: VibeVoice-ASR (transcriptions) and VibeVoice-Realtime (speech).",
    )
    for module in (speech, transcription, discovery, realtime):
        app.include_router(module.router)
        add_unversioned_aliases(app, module.router, UNVERSIONED)
    app.include_router(playground.router)
    install_openapi(app)
    return app


def add_unversioned_aliases(app: FastAPI, router: APIRouter, paths: tuple[str, ...]) -> None:
    """Serve those of ``router``'s routes named in ``paths`` also without the ``/v1`` prefix (not in the schema)."""
    for route in router.routes:
        if getattr(route, "path", None) not in paths:
            continue
        short = route.path.removeprefix("/v1")  # type: ignore[attr-defined]
        if isinstance(route, APIRoute):
            app.add_api_route(short, route.endpoint, methods=list(route.methods), include_in_schema=False)
        elif isinstance(route, APIWebSocketRoute):
            app.add_api_websocket_route(short, route.endpoint)
