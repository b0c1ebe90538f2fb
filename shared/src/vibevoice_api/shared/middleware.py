"""Pure-ASGI middleware shared by every app.

Pure ASGI (not ``BaseHTTPMiddleware``) so that streamed bodies pass through untouched and a
client disconnect reaches the handler.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .error_handlers import error_response
from .errors import AuthenticationError, PayloadTooLargeError
from .logs import REQUEST_ID_HEADER, request_id_var
from .metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REJECTED, HTTP_REQUESTS

access_log = logging.getLogger("vibevoice_api.access")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_error(send: Send, exc: Any) -> None:
    resp = error_response(exc)
    await resp({"type": "http"}, _noop_receive, send)


async def _noop_receive() -> Message:  # pragma: no cover - responses never read the body
    return {"type": "http.disconnect"}


class ScopeMiddleware:
    """A pure ASGI middleware of ``service`` that handles the scopes it :meth:`wants` (HTTP requests and
    WebSockets unless a subclass says otherwise) and passes every other one (lifespan, ...) through untouched."""

    scopes: tuple[str, ...] = ("http", "websocket")

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    def wants(self, scope: Scope) -> bool:
        return scope["type"] in self.scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.wants(scope):
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestContextMiddleware(ScopeMiddleware):
    """Request id, access log, HTTP metrics."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = _header(scope, REQUEST_ID_HEADER.encode()) or uuid.uuid4().hex[:16]
        rid = "".join(ch for ch in rid if ch.isalnum() or ch in "-_.")[:64] or uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = {"code": 0}
        method = scope.get("method", "WS")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        HTTP_IN_FLIGHT.labels(self.service).inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            HTTP_IN_FLIGHT.labels(self.service).dec()
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            code = status["code"] or (101 if scope["type"] == "websocket" else 499)
            HTTP_REQUESTS.labels(self.service, method, route_path, str(code)).inc()
            HTTP_LATENCY.labels(self.service, method, route_path).observe(elapsed)
            if scope.get("path") not in ("/health", "/metrics"):
                access_log.info(
                    "%s %s %s %.1fms",
                    method,
                    scope.get("path"),
                    code,
                    elapsed * 1000,
                    extra={"fields": {"status": code, "ms": round(elapsed * 1000, 1), "path": scope.get("path")}},
                )
            request_id_var.reset(token)


class BodyLimitMiddleware(ScopeMiddleware):
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or while streaming.

    When a chunked body crosses the limit the app sees a disconnect (so it stops reading and
    frees what it buffered) and the client gets the 413.
    """

    scopes = ("http",)

    def __init__(self, app: ASGIApp, max_bytes: int, service: str) -> None:
        super().__init__(app, service)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit_msg = f"Request body exceeds the limit of {self.max_bytes} bytes ({self.max_bytes / 2**20:.0f} MiB)."
        length = _header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
            HTTP_REJECTED.labels(self.service, "too_large").inc()
            await _send_error(send, PayloadTooLargeError(limit_msg))
            return
        seen = 0
        state = {"over": False, "started": False}

        async def receive_wrapper() -> Message:
            nonlocal seen
            if state["over"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    state["over"] = True
                    return {"type": "http.disconnect"}
            return message

        async def send_wrapper(message: Message) -> None:
            if state["over"] and not state["started"]:
                return  # swallow whatever the app says about the broken body
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            HTTP_REJECTED.labels(self.service, "too_large").inc()
            await _send_error(send, PayloadTooLargeError(limit_msg))


def keys_match(presented: str, keys: Iterable[str]) -> bool:
    """Constant-time comparison against every configured key (no early exit)."""
    ok = False
    candidate = presented.encode()
    for key in keys:
        ok |= hmac.compare_digest(candidate, key.encode())
    return ok


class APIKeyMiddleware:
    """Bearer-key auth for HTTP and WebSocket; some paths stay public by policy."""

    ALWAYS_PUBLIC = ("/health", "/ready", "/livez", "/readyz")
    DOCS = ("/", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect", "/playground")
    PAGE_ASSETS = ("/docs/assets/", "/playground/")  # the docs' and the playground's static files
    KEY_SUBPROTOCOL = "openai-insecure-api-key."  # browsers cannot set WebSocket headers (OpenAI's convention)
    DISCOVERY = ("/v1/models", "/v1/audio/models", "/v1/audio/voices", "/models", "/audio/models", "/audio/voices")

    def __init__(
        self, app: ASGIApp, keys: list[str], service: str, public_discovery: bool, public_metrics: bool
    ) -> None:
        self.app = app
        self.keys = [k for k in keys if k]
        self.service = service
        self.public_discovery = public_discovery
        self.public_metrics = public_metrics

    def _is_public(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        if path in self.ALWAYS_PUBLIC or path in self.DOCS or path.startswith(self.PAGE_ASSETS):
            return True
        if scope.get("method") == "OPTIONS":
            return True  # CORS preflight carries no credentials
        if path == "/metrics":
            return self.public_metrics
        if self.public_discovery and scope.get("method") in ("GET", "HEAD"):
            return path in self.DISCOVERY or path.startswith("/v1/models/")
        return False

    def _presented_key(self, scope: Scope) -> str | None:
        auth = _header(scope, b"authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
            return None
        return _header(scope, b"x-api-key") or _header(scope, b"api-key") or self._subprotocol_key(scope)

    def _subprotocol_key(self, scope: Scope) -> str | None:
        for proto in scope.get("subprotocols", ()) if scope["type"] == "websocket" else ():
            if proto.startswith(self.KEY_SUBPROTOCOL) and len(proto) > len(self.KEY_SUBPROTOCOL):
                return proto[len(self.KEY_SUBPROTOCOL) :]
        return None

    @classmethod
    def _browser_websocket(cls, scope: Scope, send: Send) -> tuple[Scope, Send]:
        """A key sent as a subprotocol becomes an Authorization header (never echoed back), and the handshake
        answers 'realtime' when the client offered it: browsers drop a connection that gets no subprotocol."""
        offered = list(scope.get("subprotocols", ()))
        keys = [p for p in offered if p.startswith(cls.KEY_SUBPROTOCOL)]
        if not offered:
            return scope, send
        headers = list(scope.get("headers", ()))
        if keys and _header(scope, b"authorization") is None:
            headers.append((b"authorization", b"Bearer " + keys[0][len(cls.KEY_SUBPROTOCOL) :].encode()))
        scope = {**scope, "headers": headers, "subprotocols": [p for p in offered if p not in keys]}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "websocket.accept" and not message.get("subprotocol") and "realtime" in offered:
                message = {**message, "subprotocol": "realtime"}
            await send(message)

        return scope, send_wrapper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        presented = self._presented_key(scope) if scope["type"] in ("http", "websocket") else None
        if scope["type"] == "websocket":
            scope, send = self._browser_websocket(scope, send)
        if scope["type"] not in ("http", "websocket") or not self.keys or self._is_public(scope):
            await self.app(scope, receive, send)
            return
        if presented is not None and keys_match(presented, self.keys):
            await self.app(scope, receive, send)
            return
        HTTP_REJECTED.labels(self.service, "auth").inc()
        if presented is None:
            err = AuthenticationError(
                "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.", code="missing_api_key"
            )
        else:
            err = AuthenticationError("Incorrect API key provided.")
        if scope["type"] == "websocket":
            # Close before accept: the client sees the handshake refused (HTTP 403).
            await receive()
            await send({"type": "websocket.close", "code": 1008, "reason": "invalid api key"})
            return
        await _send_error(send, err)


class AdmissionMiddleware(ScopeMiddleware):
    """Bound the requests a service accepts on its heavy paths; past the bound, 429 at once.

    Checked before the body is read, so a flood of uploads is refused without touching disk. The
    engines keep their own (smaller) queues; this is the outer wall.
    """

    def __init__(self, app: ASGIApp, limit: int, paths: tuple[str, ...], service: str, retry_after: float = 2) -> None:
        super().__init__(app, service)
        self.limit = limit
        self.paths = paths
        self.retry_after = retry_after
        self.in_flight = 0

    def wants(self, scope: Scope) -> bool:
        return scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") in self.paths

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.in_flight >= self.limit:
            from .errors import RateLimitError

            HTTP_REJECTED.labels(self.service, "busy").inc()
            await _send_error(
                send,
                RateLimitError(
                    f"The server is at capacity ({self.limit} requests in progress); retry after a moment.",
                    retry_after=self.retry_after,
                ),
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
