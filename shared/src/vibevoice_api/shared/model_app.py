"""One way to build a model service's app: the shared shell, a model loaded in the background, the
service's routes, the discovery routes of its model identity, the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI

from . import discovery
from .app import create_app
from .health import ReadinessProbe
from .identity import ModelIdentity
from .lifecycle import ModelHolder, holder_readiness, model_lifespan
from .model_settings import ModelServiceSettings
from .openapi import install_openapi


@dataclass(frozen=True)
class Service:
    name: str  # in logs and metrics: asr, tts
    description: str
    heavy_paths: tuple[str, ...]  # bounded by max_concurrency + max_queue (429 beyond)

    @property
    def title(self) -> str:
        return f"vibevoice-api {self.name.upper()} service"


def create_model_app(
    service: Service,
    settings: ModelServiceSettings,
    identity: ModelIdentity,
    load: Callable[[], Any],
    engine: Any,
    routers: Sequence[APIRouter],
    readiness: ReadinessProbe = holder_readiness,
) -> FastAPI:
    """``load`` runs in the background at start-up (``engine``, already loaded, skips it); the engine is on
    ``app.state.holder``, the identity on ``app.state.identity``."""
    holder: ModelHolder[Any] = ModelHolder(identity.id)
    app = create_app(
        title=service.title,
        service=service.name,
        settings=settings,
        readiness=readiness,
        lifespan=model_lifespan(holder, load, settings.warmup, engine),
        admission=(settings.max_concurrency + settings.max_queue, service.heavy_paths),
        description=service.description,
    )
    app.state.holder = holder
    app.state.identity = identity
    for router in (*routers, discovery.router):
        app.include_router(router)
    install_openapi(app)
    return app
