"""Cohere error answers (`{"id": ..., "message": ...}`) -> gateway errors.

- 429 -> 429 `upstream_rate_limited`, retryable, `retry-after` passed on;
- 5xx -> 502 (`upstream_error`), retryable;
- 400 and 422 -> 400 with Cohere's message;
- 401, 403 and 498 (invalid token) -> 502 `upstream_auth_failed`, not retryable: the gateway's
  Cohere key is wrong, not the caller's;
- 404 -> 404 with Cohere's message; other 4xx keep their status.
"""

from __future__ import annotations

import orjson

from lockgate.errors import GatewayError, UpstreamClientError, UpstreamServerError

__all__ = ["cohere_error", "error_message"]

AUTH_STATUSES = frozenset({401, 403, 498})


def error_message(body: bytes) -> str:
    """The message of a Cohere error body, tolerating other shapes."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace").strip()
    if isinstance(value, dict):
        for key in ("message", "data", "error"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return str(value)[:500]


def cohere_error(provider: str, status: int, message: str, retry_after: str | None) -> GatewayError:
    """The gateway error for a Cohere error; `message` must already be free of secrets."""
    message = message or f"HTTP {status}"
    passed_on = {"retry-after": retry_after} if retry_after else None
    error: GatewayError
    if status in AUTH_STATUSES:
        error = UpstreamServerError(
            f"Provider '{provider}' rejected the gateway's credentials (HTTP {status}): {message}",
            code="upstream_auth_failed",
        )
        error.retryable = False
    elif status == 429:
        error = UpstreamClientError(
            message, status=429, code="upstream_rate_limited", headers=passed_on
        )
        error.type = "rate_limit_error"
        error.retryable = True
    elif status >= 500:
        error = UpstreamServerError(
            f"Provider '{provider}' failed (HTTP {status}): {message}", headers=passed_on
        )
        error.retryable = True
    elif status in (400, 422):
        error = UpstreamClientError(message, status=400)
    elif 400 <= status < 500:
        error = UpstreamClientError(message, status=status)
        error.retryable = status in (408, 409)  # timeout and conflict are worth a retry
    else:
        error = UpstreamServerError(f"Provider '{provider}' failed (HTTP {status}): {message}")
        error.retryable = False
    return error
