"""OpenAI-shaped errors.

Every failure a client can see leaves our servers as
``{"error": {"message", "type", "param", "code"}}`` with a meaningful status.
Engines and routes raise :class:`APIError` subclasses; :func:`install_error_handlers`
maps them (and FastAPI's own validation errors, HTTP errors and anything unexpected)
to that shape the same way on every app.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("vibevoice_api.errors")


class APIError(Exception):
    """Base class: an error a client should see, with its HTTP status."""

    status_code: int = 500
    error_type: str = "server_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = dict(headers or {})
        if status_code is not None:
            self.status_code = status_code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, self.param, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status_code, headers=self.headers)


class InvalidRequestError(APIError):
    """400: a parameter is missing, malformed or out of range."""

    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(APIError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"

    def __init__(self, message: str = "Incorrect API key provided.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class NotFoundError(APIError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"

    def __init__(self, model: str, available: list[str] | None = None) -> None:
        msg = f"The model `{model}` does not exist or you do not have access to it."
        if available:
            msg += " Available models: " + ", ".join(sorted(available)) + "."
        super().__init__(msg, param="model")


class PayloadTooLargeError(APIError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class UnsupportedMediaError(APIError):
    status_code = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_media_type"


class UnprocessableError(APIError):
    status_code = 422
    error_type = "invalid_request_error"


class RateLimitError(APIError):
    """429: the admission queue is full; the client should retry later."""

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str = "Server is busy; retry shortly.", *, retry_after: float = 1, **kw: Any) -> None:
        headers = kw.pop("headers", {}) or {}
        headers.setdefault("Retry-After", str(max(1, int(round(retry_after)))))
        super().__init__(message, headers=headers, **kw)


class BadGatewayError(APIError):
    status_code = 502
    error_type = "server_error"
    default_code = "bad_gateway"


class ServiceUnavailableError(APIError):
    """503: not ready yet (model loading), upstream down, or shutting down."""

    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: float = 5, **kw: Any) -> None:
        headers = kw.pop("headers", {}) or {}
        headers.setdefault("Retry-After", str(max(1, int(round(retry_after)))))
        super().__init__(message, headers=headers, **kw)


class GatewayTimeoutError(APIError):
    status_code = 504
    error_type = "server_error"
    default_code = "timeout"

    def __init__(self, message: str, *, retry_after: float = 5, **kw: Any) -> None:
        headers = kw.pop("headers", {}) or {}
        headers.setdefault("Retry-After", str(max(1, int(round(retry_after)))))
        super().__init__(message, headers=headers, **kw)


class InternalError(APIError):
    status_code = 500
    error_type = "server_error"
    default_code = "internal_error"


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


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


def _validation_param(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form", "cookie")]
    return ".".join(parts) or None


def validation_error_to_api_error(errors: list[dict[str, Any]]) -> InvalidRequestError:
    """Turn pydantic/FastAPI validation errors into one 400, naming the first bad field."""
    if not errors:
        return InvalidRequestError("Invalid request.")
    first = errors[0]
    param = _validation_param(first.get("loc", ()))
    msg = str(first.get("msg", "Invalid value"))
    if first.get("type") == "missing":
        text = f"Missing required parameter: '{param}'." if param else "Missing required parameter."
        code = "missing_required_parameter"
    elif first.get("type") in ("json_invalid", "model_attributes_type", "dict_type") and not param:
        text = "We could not parse the JSON body of your request. Expected a JSON object."
        code = "invalid_json"
    else:
        text = f"Invalid value for '{param}': {msg}." if param else f"Invalid request: {msg}."
        code = "invalid_value"
    if len(errors) > 1:
        text += f" ({len(errors) - 1} more error(s).)"
    return InvalidRequestError(text, param=param, code=code)


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception an app can raise to the OpenAI error shape."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error_to_api_error(list(exc.errors())).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_, code = _STATUS_TYPES.get(
            exc.status_code, ("server_error" if exc.status_code >= 500 else "invalid_request_error", None)
        )
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and detail == "Not Found":
            detail = "Unknown path. This server implements the OpenAI audio API under /v1 (e.g. /v1/audio/speech)."
        return JSONResponse(
            error_body(detail, type_, None, code), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    from starlette.responses import Response

    from .cancel import ClientDisconnected

    @app.exception_handler(ClientDisconnected)
    async def _gone(request: Request, _: ClientDisconnected) -> Response:
        log.info("client went away during %s %s; work cancelled", request.method, request.url.path)
        return Response(status_code=499)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> JSONResponse:
        import errno

        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            log.error("out of temp space on %s %s: %s", request.method, request.url.path, exc)
            return APIError(
                "The server has no room left to store the upload; try a smaller file or retry later.",
                status_code=507,
                code="insufficient_storage",
            ).response()
        log.exception("OS error on %s %s", request.method, request.url.path)
        return InternalError("The server had an error while processing your request.").response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return InternalError("The server had an error while processing your request.").response()
