"""``/v1/realtime`` (WebSocket): OpenAI's Realtime protocol, the text-to-speech subset (see ``..realtime``)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from ..realtime import RealtimeSession

router = APIRouter()


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket) -> None:
    await RealtimeSession(ws, ws.app.state.holder, ws.app.state.settings).run()
