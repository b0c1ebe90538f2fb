"""OpenAI-shaped errors.

Every failure a client can see leaves our servers as
``{"error": {"message", "type", "param", "code"}}`` with a meaningful status.
Engines and routes raise :class:`APIError` subclasses; ``error_handlers`` maps them (and
FastAPI's own validation errors, HTTP errors and anything unexpected) to that shape on every app.
This module imports no web framework, so engines can raise these errors without depending on one.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """Base class: an error a client should see, with its HTTP status.

    Subclasses declare their status and defaults in the class line:
    ``class PayloadTooLargeError(APIError, status=413, code="request_too_large")``; the error type
    is ``invalid_request_error`` below 500 and ``server_error`` from 500 unless ``type`` says otherwise.
    """

    status_code: int = 500
    error_type: str = "server_error"
    default_code: str | None = None

    def __init_subclass__(
        cls, *, status: int | None = None, type: str | None = None, code: str | None = None, **kw: Any
    ) -> None:
        super().__init_subclass__(**kw)
        if status is not None:
            cls.status_code = status
            cls.error_type = "invalid_request_error" if status < 500 else "server_error"
        if type is not None:
            cls.error_type = type
        if code is not None:
            cls.default_code = code

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


class InvalidRequestError(APIError, status=400):
    """400: a parameter is missing, malformed or out of range."""


class AuthenticationError(APIError, status=401, code="invalid_api_key"):
    def __init__(self, message: str = "Incorrect API key provided.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class NotFoundError(APIError, status=404, code="not_found"):
    pass


class ModelNotFoundError(NotFoundError, code="model_not_found"):
    def __init__(self, model: str, available: list[str] | None = None) -> None:
        msg = f"The model `{model}` does not exist or you do not have access to it."
        if available:
            msg += " Available models: " + ", ".join(sorted(available)) + "."
        super().__init__(msg, param="model")


class PayloadTooLargeError(APIError, status=413, code="request_too_large"):
    pass


class UnsupportedMediaError(APIError, status=415, code="unsupported_media_type"):
    pass


class RetryLaterError(APIError):
    """An error the client may retry: carries a ``Retry-After`` header (whole seconds, at least 1)."""

    default_retry_after: float = 5

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        headers = dict(kw.pop("headers", None) or {})
        seconds = self.default_retry_after if retry_after is None else retry_after
        headers.setdefault("Retry-After", str(max(1, int(round(seconds)))))
        super().__init__(message, headers=headers, **kw)


class RateLimitError(RetryLaterError, status=429, type="rate_limit_error", code="rate_limit_exceeded"):
    """429: the admission queue is full; the client should retry later."""

    default_retry_after = 1

    def __init__(self, message: str = "Server is busy; retry shortly.", **kw: Any) -> None:
        super().__init__(message, **kw)


class BadGatewayError(APIError, status=502, code="bad_gateway"):
    pass


class ServiceUnavailableError(RetryLaterError, status=503, code="service_unavailable"):
    """503: not ready yet (model loading), upstream down, or shutting down."""


class GatewayTimeoutError(RetryLaterError, status=504, code="timeout"):
    pass


class InternalError(APIError, status=500, code="internal_error"):
    pass


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


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
