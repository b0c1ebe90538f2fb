"""``/v1/realtime`` (WebSocket): live sessions to the live service, speech-only sessions to the TTS service.

Transcription sessions (``?intent=transcription``) and realtime model names (``gpt-realtime*``, ...) go to
the live service when ``VIBEVOICE_LIVE_URL`` is set; everything else (``vibevoice-realtime``, ``tts-1``, no
model) goes to the TTS service that serves the model, as before."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from vibevoice_api.shared.errors import APIError
from vibevoice_api.shared.realtime_events import RealtimeError

from ..realtime import proxy_realtime
from ..upstream import Upstream, get_upstream

router = APIRouter()


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket) -> None:
    upstream: Upstream = get_upstream(ws)
    live_url = upstream.settings.live_url.rstrip("/")
    if live_url and _is_live(upstream, ws.query_params.get("intent"), ws.query_params.get("model")):
        await proxy_realtime(ws, live_url, upstream.router.upstream_auth(), upstream.settings.connect_timeout, "live")
        return
    try:
        state = await upstream.router.resolve("tts", ws.query_params.get("model"), realtime=True)
    except APIError as exc:
        await ws.accept()
        await ws.send_text(RealtimeError.of(exc).to_json())
        await ws.close(code=1008)
        return
    await proxy_realtime(ws, state.backend.url, upstream.router.upstream_auth(), upstream.settings.connect_timeout)


def _is_live(upstream: Upstream, intent: str | None, model: str | None) -> bool:
    if intent == "transcription":
        return True
    return bool(model) and (
        model.strip().lower() == "vibevoice-live" or upstream.router.names.is_kind(model, "realtime")
    )
