"""Stream a request to a service and its response back, both ways without buffering.

The upload is forwarded chunk by chunk as it arrives; the response goes back chunk by chunk as
the service produces it. A client that leaves, while uploading, while the service is still
working, or mid-stream, closes the upstream connection, which the service sees as a disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from vibevoice_api.shared.cancel import wait_disconnect
from vibevoice_api.shared.errors import APIError, BadGatewayError, GatewayTimeoutError, ServiceUnavailableError
from vibevoice_api.shared.logs import REQUEST_ID_HEADER, request_id_var
from vibevoice_api.shared.stall import ClosingStreamingResponse

from .routing import BackendState

log = logging.getLogger("vibevoice_api.gateway.proxy")

# Request headers kept here: hop-by-hop ones, the host, cookies and the client's credentials
# (the gateway authenticated the client; services get the upstream key, if any).
DROP_REQUEST_HEADERS = {
    "host",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "cookie",
    "authorization",
    "x-api-key",
    "api-key",
    "expect",
    REQUEST_ID_HEADER,
}
DROP_RESPONSE_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "server",
    "date",
    REQUEST_ID_HEADER,
}


class ClientGone(Exception):
    """The client disconnected before the service answered."""


def upstream_headers(request: Request, auth: dict[str, str]) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST_HEADERS}
    headers[REQUEST_ID_HEADER] = request_id_var.get()
    if auth:
        headers.update(auth)
    elif "authorization" in request.headers:
        headers["authorization"] = request.headers["authorization"]
    return headers


async def _watch_disconnect(request: Request, body_done: asyncio.Event) -> None:
    """Return when the client disconnects (only meaningful once its body has been consumed)."""
    await body_done.wait()
    await wait_disconnect(request)


@dataclass
class Hop:
    """What every forwarded request shares: the pooled client, the upstream credentials, the connect timeout."""

    client: httpx.AsyncClient
    auth: dict[str, str]
    connect_timeout: float


async def forward(
    request: Request,
    state: BackendState,
    path: str,
    hop: Hop,
    *,
    read_timeout: float,
    body: bytes | AsyncIterator[bytes] | None,
    body_done: asyncio.Event | None = None,
) -> Response:
    """Send ``request`` (with ``body``) to ``state``'s service at ``path``; stream the answer back."""
    backend = state.backend
    if body_done is None:
        body_done = asyncio.Event()
        body_done.set()
    headers = upstream_headers(request, hop.auth)
    if isinstance(body, bytes):
        headers["content-length"] = str(len(body))
    timeout = httpx.Timeout(
        connect=hop.connect_timeout, read=read_timeout, write=read_timeout, pool=hop.connect_timeout
    )
    upstream_req = hop.client.build_request(
        request.method, backend.url + path, params=request.query_params, headers=headers, content=body, timeout=timeout
    )
    send_task = asyncio.ensure_future(hop.client.send(upstream_req, stream=True))
    watcher = asyncio.ensure_future(_watch_disconnect(request, body_done))
    try:
        done, _ = await asyncio.wait({send_task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if send_task not in done:
            send_task.cancel()
            with contextlib.suppress(BaseException):
                await send_task
            log.info("client went away before %s answered; upstream request cancelled", backend.name)
            return Response(status_code=499)
        resp = send_task.result()
    except ClientDisconnect:
        return Response(status_code=499)
    except httpx.HTTPError as exc:
        if isinstance(exc.__context__, ClientDisconnect) or isinstance(exc.__cause__, ClientDisconnect):
            return Response(status_code=499)
        raise _upstream_error(exc, state, read_timeout) from exc
    finally:
        if not watcher.done():
            watcher.cancel()
    state.reachable = True
    out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in DROP_RESPONSE_HEADERS}
    return ClosingStreamingResponse(
        _relay(resp, backend.name), status_code=resp.status_code, headers=out_headers, media_type=None
    )


def _upstream_error(exc: httpx.HTTPError, state: BackendState, read_timeout: float) -> APIError:
    """The OpenAI error for a failed upstream call; marks the backend unreachable where it is."""
    backend = state.backend
    what = f"The {backend.kind.upper()} service ({backend.name})"
    if isinstance(exc, httpx.PoolTimeout):
        return ServiceUnavailableError(f"All connections to the {backend.kind.upper()} service are busy.")
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return GatewayTimeoutError(f"{what} did not answer within {read_timeout:.0f} s.")
    state.reachable = False
    if isinstance(exc, httpx.ConnectTimeout):
        return ServiceUnavailableError(f"{what} did not accept a connection in time.")
    if isinstance(exc, httpx.ConnectError):
        return ServiceUnavailableError(f"{what} is unreachable; it may be starting or restarting.")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        # The connection dropped before any answer: the service died or restarts; the client may retry.
        return ServiceUnavailableError(f"{what} closed the connection without answering; it may be restarting.")
    return BadGatewayError(f"{what} failed: {type(exc).__name__}.")


async def _relay(resp: httpx.Response, name: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        # Headers are gone already; the truncated body (no terminating chunk) tells the client.
        log.warning("upstream %s broke mid-response: %s", name, type(exc).__name__)
        raise
    finally:
        await resp.aclose()


async def stream_body(chunks: AsyncIterator[bytes], done: asyncio.Event, prefix: bytes = b"") -> AsyncIterator[bytes]:
    """The client's body as it arrives (after ``prefix`` already read), setting ``done`` at the end."""
    try:
        if prefix:
            yield prefix
        async for chunk in chunks:
            if chunk:
                yield chunk
    finally:
        done.set()
