"""One way to build every FastAPI app: errors, request ids, metrics, auth, CORS, body limit, health."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .docs import install_docs
from .error_handlers import install_error_handlers
from .health import ReadinessProbe
from .health import router as health_router
from .metrics import metrics_endpoint
from .middleware import AdmissionMiddleware, APIKeyMiddleware, BodyLimitMiddleware, RequestContextMiddleware
from .settings import CommonSettings
from .stall import StallGuardMiddleware


def create_app(
    *,
    title: str,
    service: str,
    settings: CommonSettings,
    readiness: ReadinessProbe,
    description: str = "",
    version: str = "0.1.0",
    lifespan: Any = None,
    admission: tuple[int, tuple[str, ...]] | None = None,
) -> FastAPI:
    """Build an app with the behaviour every vibevoice-api process shares.

    ``readiness(app)`` returns ``(ready, details)`` (or an awaitable of it); ``/ready`` answers 200 or 503 from it.
    ``admission`` = (limit, paths): more than ``limit`` requests in progress on ``paths`` get 429.
    """
    app = FastAPI(
        title=title, description=description, version=version, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    install_docs(app)  # /docs and /redoc with their assets served here, not from a CDN
    app.state.settings = settings
    app.state.service = service
    app.state.readiness = readiness
    install_error_handlers(app)
    app.include_router(health_router)

    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)

    # Order: the last added runs first. Context (request id, metrics) wraps everything, then CORS,
    # then auth, then the body limit closest to the app.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes, service=service)
    if admission is not None:
        app.add_middleware(AdmissionMiddleware, limit=admission[0], paths=admission[1], service=service)
    app.add_middleware(
        APIKeyMiddleware,
        keys=settings.api_keys,
        service=service,
        public_discovery=settings.public_discovery,
        public_metrics=settings.public_metrics,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["x-request-id", "retry-after"],
        )
    app.add_middleware(RequestContextMiddleware, service=service)
    app.add_middleware(StallGuardMiddleware, seconds=settings.stream_stall_seconds, service=service)
    return app
