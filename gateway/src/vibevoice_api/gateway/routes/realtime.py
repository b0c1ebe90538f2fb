"""``/v1/realtime`` (WebSocket): relayed to the TTS service that serves the requested model."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from vibevoice_api.shared.errors import APIError

from ..realtime import proxy_realtime
from ..upstream import Upstream, get_upstream

router = APIRouter()


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket) -> None:
    upstream: Upstream = get_upstream(ws)
    try:
        state = await upstream.router.resolve("tts", ws.query_params.get("model"), realtime=True)
    except APIError as exc:
        await ws.accept()
        await ws.send_json({"type": "error", "error": exc.body()["error"]})
        await ws.close(code=1008)
        return
    await proxy_realtime(ws, state, upstream.router.upstream_auth(), upstream.settings.connect_timeout)
