"""One error hierarchy for the gateway, rendered to OpenAI's and Anthropic's error JSON here.

Messages are written for the caller: they name what is wrong, and never carry a credential or an
upstream URL (those come only from config and stay on the server).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import orjson

__all__ = [
    "BadRequest",
    "BudgetExceeded",
    "GatewayError",
    "MethodNotAllowed",
    "ModelNotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "RouteNotFound",
    "Unauthenticated",
    "UnsupportedParameter",
    "UpstreamClientError",
    "UpstreamServerError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "anthropic_error",
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
    details: Mapping[str, object] = MappingProxyType({})
    """Extra fields of the error object beyond OpenAI's four (e.g. a prompt's `violations`)."""

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


class Unauthenticated(GatewayError):
    """Missing or bad credentials. The message never says which check failed."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"

    def __init__(self, message: str = "Invalid credentials: send a valid API key or token") -> None:
        super().__init__(message, headers={"www-authenticate": "Bearer"})


class PermissionDenied(GatewayError):
    """Valid credentials that a policy does not allow this (a model, an OIDC rule)."""

    status = 403
    type = "permission_error"
    code = "permission_denied"


class RateLimited(GatewayError):
    """A key's, team's or model's rate limit is reached; `retry-after` says when to retry."""

    status = 429
    type = "requests"
    code = "rate_limit_exceeded"
    retryable = True


class BudgetExceeded(GatewayError):
    """A budget is spent for its period; retrying does not help, so SDKs are told not to."""

    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"x-should-retry": "false"})


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
                **error.details,
            }
        }
    )


_ANTHROPIC_TYPES: Mapping[int, str] = MappingProxyType(
    {
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        503: "overloaded_error",
        504: "timeout_error",
        529: "overloaded_error",
    }
)
OVERLOADED = 529
"""Anthropic's status for an overloaded service; its SDKs raise `OverloadedError` for it."""


def anthropic_error(error: GatewayError) -> tuple[int, bytes]:
    """(status, `{"type": "error", "error": {"type", "message"}}`) as Anthropic sends them.

    An overloaded provider answers 529 with `overloaded_error`, as Anthropic does; every other
    status is kept and typed by Anthropic's table (other 4xx: `invalid_request_error`, other 5xx:
    `api_error`). The offending field, which OpenAI's shape carries in `param`, leads the
    message as in Anthropic's own (`messages.0.content: ...`).
    """
    status = OVERLOADED if error.code == "upstream_overloaded" else error.status
    kind = _ANTHROPIC_TYPES.get(status)
    if kind is None:
        kind = "api_error" if status >= 500 else "invalid_request_error"
    message = error.message
    if error.param and error.param not in message:
        message = f"{error.param}: {message}"  # Anthropic's error has no `param` field
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return status, orjson.dumps(body)
