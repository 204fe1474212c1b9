"""Anthropic error answers (`{"type": "error", "error": {"type", "message"}}`) -> gateway errors.

The same mapping serves an HTTP error answer and an `error` event in the middle of a stream (which
carries no status: it is inferred from the error type).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import orjson

from lockgate.errors import GatewayError, UpstreamClientError, UpstreamServerError

__all__ = ["error_fields", "map_error", "status_of"]

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
OVERLOADED = 529
_STATUS_OF_TYPE: Mapping[str, int] = MappingProxyType(
    {
        "invalid_request_error": 400,
        "authentication_error": 401,
        "billing_error": 402,
        "permission_error": 403,
        "not_found_error": 404,
        "request_too_large": 413,
        "rate_limit_error": 429,
        "api_error": 500,
        "timeout_error": 504,
        "overloaded_error": OVERLOADED,
    }
)


def status_of(error_type: str | None) -> int:
    """The HTTP status Anthropic answers an error type with (500 when unknown)."""
    return _STATUS_OF_TYPE.get(error_type or "", 500)


def error_fields(body: bytes) -> tuple[str | None, str]:
    """(error type, message) of an Anthropic error body, tolerating other shapes."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, body[:500].decode("utf-8", "replace").strip()
    error = value.get("error", value) if isinstance(value, dict) else value
    if isinstance(error, str):
        return None, error
    if not isinstance(error, dict):
        return None, str(error)[:500]
    kind = error.get("type")
    return (str(kind) if kind is not None else None), str(error.get("message") or "")


def map_error(
    provider: str, status: int, error_type: str | None, message: str, retry_after: str | None
) -> GatewayError:
    """The gateway error for an Anthropic error; `message` must already be free of secrets."""
    message = message or f"HTTP {status}"
    passed_on = {"retry-after": retry_after} if retry_after else None
    error: GatewayError
    if status in (401, 402, 403):
        # The caller's credentials are fine; the gateway's own (or its account) are not.
        # Passing 401 on would make the client believe its gateway key is wrong.
        what = "account" if status == 402 else "credentials"
        error = UpstreamServerError(
            f"Provider '{provider}' rejected the gateway's {what} (HTTP {status}): {message}",
            code="upstream_billing_error" if status == 402 else "upstream_auth_failed",
        )
        error.retryable = False
    elif status == 429:
        error = UpstreamClientError(
            message, status=429, code="upstream_rate_limited", headers=passed_on
        )
        error.type = "rate_limit_error"
        error.retryable = True
    elif status == OVERLOADED or (status >= 500 and error_type == "overloaded_error"):
        error = UpstreamServerError(
            f"Provider '{provider}' is overloaded (HTTP {status}): {message}",
            code="upstream_overloaded",
            status=503,
            headers=passed_on,
        )
    elif 400 <= status < 500:
        code = None if error_type in (None, "invalid_request_error") else error_type
        error = UpstreamClientError(message, status=status, code=code)
        error.type = "invalid_request_error"
        error.retryable = status in (408, 409)  # timeout and conflict are worth a retry
    else:
        error = UpstreamServerError(f"Provider '{provider}' failed (HTTP {status}): {message}")
        error.retryable = status in RETRYABLE_STATUSES
    return error
