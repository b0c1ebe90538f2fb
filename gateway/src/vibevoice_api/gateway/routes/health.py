"""The gateway's readiness: ready when every configured service answers its own ``/ready`` with 200."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from ..upstream import Upstream


async def probe(upstream: Upstream, name: str, kind: str, url: str) -> tuple[str, dict[str, Any]]:
    try:
        resp = await upstream.client.get(url + "/ready", timeout=upstream.settings.discovery_timeout)
    except httpx.HTTPError as exc:
        return name, {"ready": False, "url": url, "kind": kind, "status": "unreachable", "error": type(exc).__name__}
    try:
        detail = resp.json()
    except ValueError:
        detail = {}
    status = detail.get("status", resp.status_code) if isinstance(detail, dict) else resp.status_code
    return name, {"ready": resp.status_code == 200, "url": url, "kind": kind, "status": status}


def _probes(upstream: Upstream) -> list[Any]:
    out = [probe(upstream, s.backend.name, s.backend.kind, s.backend.url) for s in upstream.router.states]
    live = upstream.settings.live_url.rstrip("/")
    if live:
        out.append(probe(upstream, "live", "live", live))
    return out


async def services_readiness(app: Any) -> tuple[bool, dict[str, Any]]:
    """The probe behind the gateway's ``/ready`` (503 until the ASR and TTS services are ready).

    The live service (realtime sessions) is reported but optional: speech and transcription work without it."""
    upstream: Upstream = app.state.upstream
    results = dict(await asyncio.gather(*_probes(upstream)))
    required = [v for name, v in results.items() if name != "live"]
    ok = bool(required) and all(v["ready"] for v in required)
    if "live" in results:
        results["live"]["optional"] = True
    return ok, {"services": results}
