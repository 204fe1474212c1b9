"""Errors in Google's shape: `{"error": {"code", "message", "status", "details"?}}`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from lockgate.simulate.errors import ApiError

__all__ = [
    "GeminiApiError",
    "as_gemini",
    "invalid_argument",
    "missing_credentials",
    "simulated_failure",
]

# HTTP status -> google.rpc.Code name, as Google's HTTP mapping pairs them.
STATUS_NAMES: Mapping[int, str] = MappingProxyType(
    {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ABORTED",
        429: "RESOURCE_EXHAUSTED",
        499: "CANCELLED",
        500: "INTERNAL",
        501: "UNIMPLEMENTED",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }
)
_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        400: "Request contains an invalid argument.",
        401: (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential."
        ),
        403: "The caller does not have permission",
        404: (
            "models/{model} is not found for API version v1beta, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods."
        ),
        429: "Resource has been exhausted (e.g. check quota).",
        500: "An internal error has occurred. Please retry or report the problem.",
        503: "The model is overloaded. Please try again later.",
        504: "Deadline expired before operation could complete.",
    }
)
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


class GeminiApiError(ApiError):
    """An `ApiError` rendered the way Google APIs answer."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers=headers)
        self.details = details or []

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.status,
            "message": self.message,
            "status": STATUS_NAMES.get(self.status, "UNKNOWN"),
        }
        if self.details:
            error["details"] = self.details
        return {"error": error}


def as_gemini(error: ApiError) -> GeminiApiError:
    """The same failure (status, message, headers) in Google's shape."""
    if isinstance(error, GeminiApiError):
        return error
    return GeminiApiError(error.status, error.message, headers=error.headers)


def invalid_argument(message: str) -> GeminiApiError:
    return GeminiApiError(400, message)


def missing_credentials(vertex: bool) -> GeminiApiError:
    """What Google answers a request without any credential."""
    if vertex:
        return GeminiApiError(
            401,
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential.",
        )
    return GeminiApiError(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    )


def simulated_failure(status: int, model: str, retry_after: float | None) -> GeminiApiError:
    """The error Gemini answers with for `status`; `retry_after` as a RetryInfo detail."""
    template = _MESSAGES.get(status, f"Simulated error with status {status}.")
    details = []
    if retry_after is not None:
        whole = math.isclose(retry_after, round(retry_after))
        delay = f"{round(retry_after)}s" if whole else f"{retry_after:g}s"
        details.append({"@type": RETRY_INFO, "retryDelay": delay})
    return GeminiApiError(status, template.format(model=model), details=details)
