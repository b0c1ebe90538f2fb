"""The gateway's readiness: ready when every configured service answers its own ``/ready`` with 200."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from ..routing import BackendState
from ..upstream import Upstream


async def probe(upstream: Upstream, state: BackendState) -> tuple[str, dict[str, Any]]:
    backend = state.backend
    try:
        resp = await upstream.client.get(backend.url + "/ready", timeout=upstream.settings.discovery_timeout)
    except httpx.HTTPError as exc:
        return backend.name, {
            "ready": False,
            "url": backend.url,
            "kind": backend.kind,
            "status": "unreachable",
            "error": type(exc).__name__,
        }
    try:
        detail = resp.json()
    except ValueError:
        detail = {}
    status = detail.get("status", resp.status_code) if isinstance(detail, dict) else resp.status_code
    return backend.name, {"ready": resp.status_code == 200, "url": backend.url, "kind": backend.kind, "status": status}


async def services_readiness(app: Any) -> tuple[bool, dict[str, Any]]:
    """The probe behind the gateway's ``/ready`` (503 until all services are ready)."""
    upstream: Upstream = app.state.upstream
    results = dict(await asyncio.gather(*(probe(upstream, s) for s in upstream.router.states)))
    ok = bool(results) and all(v["ready"] for v in results.values())
    return ok, {"services": results}
