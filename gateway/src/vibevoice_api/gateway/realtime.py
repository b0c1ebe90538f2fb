"""WebSocket relay for ``/v1/realtime`` to the live service or the TTS service."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect
from vibevoice_api.shared.errors import ServiceUnavailableError
from vibevoice_api.shared.logs import REQUEST_ID_HEADER, request_id_var
from vibevoice_api.shared.realtime_events import RealtimeError

log = logging.getLogger("vibevoice_api.gateway.realtime")


async def proxy_realtime(
    ws: WebSocket, base_url: str, auth: dict[str, str], connect_timeout: float, service: str = "TTS"
) -> None:
    """Accept the client, connect upstream (``base_url``), pump frames both ways until either side closes."""
    url = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/v1/realtime"
    if ws.url.query:
        url += "?" + ws.url.query
    headers = {REQUEST_ID_HEADER: request_id_var.get(), **auth}
    if not auth and "authorization" in ws.headers:
        headers["authorization"] = ws.headers["authorization"]
    try:
        upstream = await asyncio.wait_for(
            websockets.connect(url, additional_headers=headers, max_size=16 * 2**20, open_timeout=connect_timeout),
            timeout=connect_timeout + 1,
        )
    except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as exc:
        await ws.accept()
        unreachable = ServiceUnavailableError(f"The {service} service is unreachable ({type(exc).__name__}).")
        await ws.send_text(RealtimeError.of(unreachable).to_json())
        await ws.close(code=1011)
        return
    await ws.accept()

    async def client_to_upstream() -> None:
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                if msg.get("text") is not None:
                    await upstream.send(msg["text"])
                elif msg.get("bytes") is not None:
                    await upstream.send(msg["bytes"])
        except (WebSocketDisconnect, websockets.ConnectionClosed):
            return

    async def upstream_to_client() -> None:
        try:
            async for data in upstream:
                if isinstance(data, bytes):
                    await ws.send_bytes(data)
                else:
                    await ws.send_text(data)
        except (WebSocketDisconnect, websockets.ConnectionClosed, RuntimeError):
            return

    tasks = [asyncio.ensure_future(client_to_upstream()), asyncio.ensure_future(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await upstream.close()
        with contextlib.suppress(Exception):
            await ws.close()
