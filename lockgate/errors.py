"""One error hierarchy for the gateway, rendered to OpenAI's error JSON in one place.

Messages are written for the caller: they name what is wrong, and never carry a credential or an
upstream URL (those come only from config and stay on the server).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

__all__ = [
    "BadRequest",
    "GatewayError",
    "MethodNotAllowed",
    "ModelNotFound",
    "PayloadTooLarge",
    "RouteNotFound",
    "UnsupportedParameter",
    "UpstreamClientError",
    "UpstreamServerError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "openai_error_body",
]


class GatewayError(Exception):
    """An error the gateway answers with, carrying its HTTP status and OpenAI error fields."""

    status: int = 500
    type: str = "api_error"
    code: str | None = None
    retryable: bool = False
    attempts: int = 0
    """Upstream attempts made before the error (reported in `x-lockgate-attempts`)."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: Mapping[str, str] = headers or {}


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class ModelNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model '{model}' does not exist on this gateway", param="model")


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than the limit of {limit} bytes")


class UnsupportedParameter(GatewayError):
    """A request parameter the target provider cannot honour (and may not silently drop)."""

    status = 400
    type = "invalid_request_error"
    code = "unsupported_parameter"

    def __init__(self, param: str, provider: str) -> None:
        super().__init__(
            f"Parameter '{param}' is not supported by provider '{provider}' "
            "(set drop_unsupported: true on the provider or model to drop it instead)",
            param=param,
        )


class RouteNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class UpstreamClientError(GatewayError):
    """The provider refused the request (4xx): its status and message are passed on."""

    type = "invalid_request_error"


class UpstreamServerError(GatewayError):
    """The provider failed (5xx, or an answer that could not be read)."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"
    retryable = True


class UpstreamUnavailable(GatewayError):
    """The provider could not be reached: refused, reset, or DNS failure."""

    status = 502
    type = "upstream_error"
    code = "upstream_unavailable"
    retryable = True


class UpstreamTimeout(GatewayError):
    status = 504
    type = "upstream_error"
    code = "upstream_timeout"
    retryable = True


def openai_error_body(error: GatewayError) -> bytes:
    """`{"error": {"message", "type", "param", "code"}}` as OpenAI sends it."""
    return orjson.dumps(
        {
            "error": {
                "message": error.message,
                "type": error.type,
                "param": error.param,
                "code": error.code,
            }
        }
    )
