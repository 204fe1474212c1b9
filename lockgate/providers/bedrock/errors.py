"""Bedrock error answers -> gateway errors.

AWS names the error in the `x-amzn-ErrorType` header (`ValidationException:http://...`), the body
is `{"message": "..."}` (`Message` on some paths). In a stream the same errors arrive as
`exception` messages whose `:exception-type` is the camel-cased name (`throttlingException`),
with no HTTP status: it is inferred from the name. Mapping:

- 429 ThrottlingException -> 429 `upstream_rate_limited`, retryable;
- ServiceUnavailableException, ModelNotReadyException, InternalServerException,
  ModelTimeoutException, ModelStreamErrorException -> 5xx, retryable;
- 401/403 (AccessDenied, UnrecognizedClient, InvalidSignature, ExpiredToken) -> 502
  `upstream_auth_failed`, not retryable: the gateway's AWS credentials are wrong, not the caller's;
- other 4xx (400 ValidationException, 404 ResourceNotFoundException, ...) -> that status with
  AWS's message; `code` = the snake-cased type unless it is a plain ValidationException.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import orjson

from lockgate.errors import GatewayError, UpstreamClientError, UpstreamServerError

__all__ = ["bedrock_error", "error_fields", "status_of"]

_STATUS_OF_TYPE: Mapping[str, int] = MappingProxyType(
    {
        "ValidationException": 400,
        "AccessDeniedException": 403,
        "UnrecognizedClientException": 403,
        "ResourceNotFoundException": 404,
        "ModelTimeoutException": 408,
        "ModelErrorException": 424,
        "ModelStreamErrorException": 424,
        "ThrottlingException": 429,
        "ServiceQuotaExceededException": 400,
        "InternalServerException": 500,
        "ServiceUnavailableException": 503,
    }
)
_RETRYABLE = frozenset(
    {
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "InternalServerException",
        "ModelTimeoutException",
        "ModelStreamErrorException",
    }
)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def status_of(error_type: str | None) -> int:
    """The HTTP status AWS answers an error type with (500 when unknown)."""
    return _STATUS_OF_TYPE.get(error_type or "", 500)


def error_fields(headers: Mapping[str, str], body: bytes) -> tuple[str | None, str]:
    """(error type, message) of a Bedrock error answer, tolerating other shapes."""
    kind = headers.get("x-amzn-errortype") or headers.get("x-amzn-ErrorType")
    message = ""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        message = body[:500].decode("utf-8", "replace").strip()
        value = None
    if isinstance(value, dict):
        message = str(value.get("message") or value.get("Message") or "")
        kind = kind or value.get("__type")
    if isinstance(kind, str) and kind:
        kind = kind.split(":", 1)[0].rsplit("#", 1)[-1]
        return kind[:1].upper() + kind[1:], message
    return None, message


def bedrock_error(
    provider: str, status: int, error_type: str | None, message: str, retry_after: str | None
) -> GatewayError:
    """The gateway error for a Bedrock error; `message` must already be free of secrets."""
    message = message or f"HTTP {status}"
    named = f"{error_type}: {message}" if error_type else message
    error: GatewayError
    if status in (401, 403):
        error = UpstreamServerError(
            f"Provider '{provider}' rejected the gateway's credentials (HTTP {status}): {named}",
            code="upstream_auth_failed",
        )
        error.retryable = False
    elif status == 429 and error_type != "ModelNotReadyException":
        passed_on = {"retry-after": retry_after} if retry_after else None
        error = UpstreamClientError(
            message, status=429, code="upstream_rate_limited", headers=passed_on
        )
        error.type = "rate_limit_error"
        error.retryable = True
    elif error_type in _RETRYABLE or status in (500, 502, 503, 504):
        code = "upstream_overloaded" if status in (429, 503) else "upstream_error"
        error = UpstreamServerError(
            f"Provider '{provider}' failed (HTTP {status}): {named}",
            code=code,
            status=503 if code == "upstream_overloaded" else None,
        )
        error.retryable = True
    elif 400 <= status < 500:
        code = None
        if error_type not in (None, "ValidationException"):
            code = _CAMEL.sub("_", error_type.removesuffix("Exception")).lower()
        error = UpstreamClientError(message, status=status, code=code)
        error.retryable = status in (408, 409)  # timeout and conflict are worth a retry
    else:
        error = UpstreamServerError(f"Provider '{provider}' failed (HTTP {status}): {named}")
        error.retryable = False
    return error
