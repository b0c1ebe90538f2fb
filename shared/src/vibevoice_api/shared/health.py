"""``/health`` (liveness) and ``/ready`` (readiness) for every process.

Readiness comes from the probe the app was built with (``app.state.readiness``): a function of the
app returning ``(ready, details)``, or an awaitable of it (the gateway asks its services).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

Readiness = tuple[bool, dict[str, Any]]
ReadinessProbe = Callable[[Any], "Readiness | Awaitable[Readiness]"]

router = APIRouter(tags=["ops"])


@router.get("/health", summary="Liveness: the process is up")
async def health(request: Request) -> dict[str, str]:
    return {"status": "ok", "service": request.app.state.service}


@router.get("/ready", summary="Readiness: 503 until the model (or every service behind the gateway) is ready")
async def ready(request: Request) -> JSONResponse:
    result = request.app.state.readiness(request.app)
    ok, details = await result if inspect.isawaitable(result) else result
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", "service": request.app.state.service, **details},
        status_code=200 if ok else 503,
    )
