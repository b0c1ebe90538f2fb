"""How the gateway reaches its services: read just enough of a request to pick the service (the
``model`` field), then forward it whole, with the right credentials and timeouts.

One :class:`Upstream` lives on ``app.state.upstream`` for the app's lifetime (it owns the pooled
HTTP client); routes get it with :func:`get_upstream`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import httpx
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from vibevoice_api.shared.errors import InvalidRequestError, PayloadTooLargeError

from .proxy import Hop, forward, stream_body
from .routing import BackendState, Router
from .settings import GatewaySettings

MODEL_FIELD = re.compile(
    rb'content-disposition:[^\r\n]*\bname="?model"?[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n(.*?)\r\n--', re.I | re.S
)
FILE_PART = re.compile(rb"content-disposition:[^\r\n]*\bfilename=", re.I)
PEEK_LIMIT = 64 * 1024


class Upstream:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        limits = httpx.Limits(max_connections=settings.pool_size * 4, max_keepalive_connections=settings.pool_size)
        self.client = httpx.AsyncClient(
            limits=limits, timeout=httpx.Timeout(settings.tts_timeout, connect=settings.connect_timeout)
        )
        self.router = Router(settings, self.client)

    async def aclose(self) -> None:
        await self.client.aclose()

    def read_timeout(self, kind: str) -> float:
        return self.settings.tts_timeout if kind == "tts" else self.settings.asr_timeout

    async def forward(
        self,
        request: Request,
        state: BackendState,
        path: str,
        *,
        read_timeout: float,
        body: bytes | AsyncIterator[bytes] | None = None,
        body_done: asyncio.Event | None = None,
    ) -> Response:
        hop = Hop(self.client, self.router.upstream_auth(), self.settings.connect_timeout)
        return await forward(request, state, path, hop, read_timeout=read_timeout, body=body, body_done=body_done)

    async def forward_json(self, request: Request, kind: str, path: str) -> Response:
        """A JSON request (speech, or a base64 transcription): routed by its ``model`` field."""
        body = await read_json_body(request, self.settings.max_json_mb)
        state = await self.router.resolve(kind, model_from_json(body))
        return await self.forward(request, state, path, read_timeout=self.read_timeout(kind), body=body)

    async def forward_upload(self, request: Request, path: str) -> Response:
        """A transcription upload, streamed through; routed by the form's ``model`` field when it comes first."""
        ctype = request.headers.get("content-type", "").lower()
        if ctype.startswith("application/json"):
            return await self.forward_json(request, "asr", path)
        chunks = request.stream().__aiter__()
        prefix = bytearray()
        model: str | None = None
        if ctype.startswith("multipart/form-data"):
            # Peek until the model field (clients send it before the file) or the file part starts.
            async for chunk in chunks:
                prefix += chunk
                m = MODEL_FIELD.search(prefix)
                f = FILE_PART.search(prefix)
                if m and (not f or m.start() < f.start()):
                    model = m.group(1).decode("utf-8", "replace").strip()
                    break
                if f or len(prefix) > PEEK_LIMIT:
                    break
        state = await self.router.resolve("asr", model)
        done = asyncio.Event()
        body = stream_body(chunks, done, bytes(prefix))
        return await self.forward(
            request, state, path, read_timeout=self.settings.asr_timeout, body=body, body_done=done
        )


def get_upstream(conn: HTTPConnection) -> Upstream:
    """FastAPI dependency: the app's :class:`Upstream`."""
    return conn.app.state.upstream


async def read_json_body(request: Request, limit_mb: float) -> bytes:
    limit = int(limit_mb * 2**20)
    too_large = PayloadTooLargeError(f"JSON body exceeds the limit of {limit_mb:g} MiB.")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def model_from_json(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. Expected a JSON object.", code="invalid_json"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequestError("'model' must be a string.", param="model", code="invalid_type")
    return model
