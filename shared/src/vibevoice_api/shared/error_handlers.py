"""Map every exception an app can raise to the OpenAI error shape (the FastAPI side of ``errors``)."""

from __future__ import annotations

import errno
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .cancel import ClientDisconnected
from .errors import APIError, InternalError, error_body, validation_error_to_api_error

log = logging.getLogger("vibevoice_api.errors")

_STATUS_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def error_response(exc: APIError) -> JSONResponse:
    """The JSON response for an :class:`APIError` (status, OpenAI body, its headers)."""
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def api_error(_: Request, exc: APIError) -> JSONResponse:
    return error_response(exc)


async def request_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(validation_error_to_api_error(list(exc.errors())))


async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    type_, code = _STATUS_TYPES.get(
        exc.status_code, ("server_error" if exc.status_code >= 500 else "invalid_request_error", None)
    )
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    if exc.status_code == 404 and detail == "Not Found":
        detail = "Unknown path. This server implements the OpenAI audio API under /v1 (e.g. /v1/audio/speech)."
    return JSONResponse(
        error_body(detail, type_, None, code), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def client_gone(request: Request, _: ClientDisconnected) -> Response:
    log.info("client went away during %s %s; work cancelled", request.method, request.url.path)
    return Response(status_code=499)


async def os_error(request: Request, exc: OSError) -> JSONResponse:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        log.error("out of temp space on %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            APIError(
                "The server has no room left to store the upload; try a smaller file or retry later.",
                status_code=507,
                code="insufficient_storage",
            )
        )
    log.exception("OS error on %s %s", request.method, request.url.path)
    return error_response(InternalError("The server had an error while processing your request."))


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(InternalError("The server had an error while processing your request."))


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception an app can raise to the OpenAI error shape."""
    app.add_exception_handler(APIError, api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, request_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(ClientDisconnected, client_gone)  # type: ignore[arg-type]
    app.add_exception_handler(OSError, os_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_error)
