"""A cut-off for clients that stop reading a stream (HTTP chunked/SSE bodies, WebSocket events).

The server's transports apply back-pressure: once a connection's send buffer is full, sending waits. A client that
stops reading would then hold its request, its engine slot and whatever the producer has queued for ever.
:class:`StallGuardMiddleware` bounds that wait: a body chunk or WebSocket message that the client does not accept
within ``seconds`` ends the exchange (the HTTP response is cut short, so the client sees an incomplete body; the
WebSocket handler sees a disconnect). The request's generator is then closed, which cancels its engine job.
"""

from __future__ import annotations

import contextlib
import logging

from prometheus_client import Counter
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from .cancel import within
from .middleware import ScopeMiddleware

log = logging.getLogger("vibevoice_api.stall")

STALLED = Counter(
    "vibevoice_stalled_clients_total", "Streams cut off because the client stopped reading", ["service", "kind"]
)
STREAM_MESSAGES = ("http.response.body", "websocket.send")


class ClientStalled(Exception):
    """The client accepted no data for the stall limit (HTTP): the response is abandoned."""


class StallGuardMiddleware(ScopeMiddleware):
    def __init__(self, app: ASGIApp, seconds: float, service: str) -> None:
        super().__init__(app, service)
        self.seconds = seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]

        async def guarded(message: Message) -> None:
            if message["type"] not in STREAM_MESSAGES:
                await send(message)
                return
            try:
                async with within(self.seconds):
                    await send(message)
            except TimeoutError:
                STALLED.labels(self.service, kind).inc()
                log.warning("client read nothing for %.0f s: %s %s cut off", self.seconds, kind, scope.get("path"))
                if kind == "websocket":
                    raise WebSocketDisconnect(1008, "client too slow") from None
                raise ClientStalled from None

        try:
            await self.app(scope, receive, guarded)
        except ClientStalled:
            return  # the server closes the connection; the client sees the body cut short
        except Exception as exc:
            split = getattr(exc, "split", None)  # an exception group, from a streaming response's task group
            if split is None or split(ClientStalled)[1] is not None:
                raise


class ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that closes its body generator however the sending ends (cut off, client gone).

    Starlette leaves an abandoned generator to the garbage collector; an exception's traceback cycle can keep it
    (and the upstream connection or engine job it holds) alive for minutes. Closing it at once cancels the job.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
