"""Gemini error answers -> gateway errors.

Google answers `{"error": {"code", "message", "status", "details"}}` (a one-element list of that
on some streaming paths). Mapping:

- 429 RESOURCE_EXHAUSTED -> 429 `upstream_rate_limited`, retryable; `retry-after` is the
  provider's header or, as Gemini usually sends it, the `google.rpc.RetryInfo.retryDelay` detail
  (seconds, rounded up);
- 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, and 400 with reason API_KEY_INVALID (how the
  Gemini API answers a wrong key) -> 502 `upstream_auth_failed`, not retryable: the caller's
  request was fine, the gateway's credential was not;
- 5xx -> 502 naming the provider and its status, retryable for 500, 502, 503, 504;
- other 4xx (400 INVALID_ARGUMENT, 404 NOT_FOUND, ...) -> that status with Google's message,
  `code` = the lower-cased Google status (`invalid_argument`, `not_found`, ...).

The provider's credential is scrubbed from every message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from lockgate.errors import GatewayError, UpstreamClientError, UpstreamServerError

__all__ = ["error_object", "gemini_error", "parse_error_body"]

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def parse_error_body(body: bytes) -> Mapping[str, Any]:
    """The `error` object of a Gemini error body ({"message": text} for anything else)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"message": body[:500].decode("utf-8", "replace").strip()}
    return error_object(value)


def error_object(value: object) -> Mapping[str, Any]:
    if isinstance(value, list) and value:
        value = value[0]
    error = value.get("error") if isinstance(value, dict) else None
    if isinstance(error, dict):
        return error
    if isinstance(error, str):
        return {"message": error}
    return {"message": str(value)[:500]}


def gemini_error(
    provider: str,
    secret: str | None,
    status: int,
    headers: Mapping[str, str],
    error: Mapping[str, Any],
) -> GatewayError:
    """The gateway error for an upstream `status` with Gemini `error` object."""
    message = str(error.get("message") or f"HTTP {status}")
    if secret and secret in message:
        message = message.replace(secret, "***")
    google_status = error.get("status")
    code = google_status.lower() if isinstance(google_status, str) else None
    details = error.get("details")
    details = details if isinstance(details, list) else []
    result: GatewayError
    if status in (401, 403) or _has_reason(details, "API_KEY_INVALID"):
        result = UpstreamServerError(
            f"Provider '{provider}' rejected the gateway's credentials (HTTP {status}): {message}",
            code="upstream_auth_failed",
        )
        result.retryable = False
    elif status == 429:
        retry_after = headers.get("retry-after") or _retry_delay(details)
        result = UpstreamClientError(
            message,
            status=429,
            code="upstream_rate_limited",
            headers={"retry-after": retry_after} if retry_after else None,
        )
        result.type = "rate_limit_error"
        result.retryable = True
    elif 400 <= status < 500:
        result = UpstreamClientError(message, status=status, code=code)
        result.retryable = status in (408, 409)  # timeout and conflict are worth a retry
    else:
        result = UpstreamServerError(f"Provider '{provider}' failed (HTTP {status}): {message}")
        result.retryable = status in RETRYABLE_STATUSES
    return result


def _has_reason(details: list[Any], reason: str) -> bool:
    return any(isinstance(detail, dict) and detail.get("reason") == reason for detail in details)


def _retry_delay(details: list[Any]) -> str | None:
    """RetryInfo's `retryDelay` ("22s", "8.94s") as whole seconds, rounded up."""
    for detail in details:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        match = _DELAY.match(delay) if isinstance(delay, str) else None
        if match:
            return str(max(1, math.ceil(float(match.group(1)))))
    return None
