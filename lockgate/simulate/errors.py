"""OpenAI-shaped API errors raised by handlers and rendered by the dispatcher."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class ApiError(Exception):
    """An error answered as ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.code = code
        self.headers: Mapping[str, str] = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def missing_parameter(param: str) -> ApiError:
    return invalid_request(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def invalid_type(param: str, expected: str) -> ApiError:
    return invalid_request(
        f"Invalid type for '{param}': expected {expected}.", param=param, code="invalid_type"
    )


def invalid_value(param: str, detail: str) -> ApiError:
    return invalid_request(
        f"Invalid value for '{param}': {detail}", param=param, code="invalid_value"
    )


def malformed_json() -> ApiError:
    return invalid_request(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON.)"
    )


def missing_api_key() -> ApiError:
    # Same wording and type as OpenAI's answer to a request without credentials.
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the api-key "
        "header.",
        error_type="invalid_request_error",
    )


def invalid_url(method: str, path: str) -> ApiError:
    return ApiError(404, f"Invalid URL ({method} {path})")


def model_not_found(model: str) -> ApiError:
    return ApiError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


# status -> (type, code, message template); "{model}" is filled in.
_SIMULATED: Mapping[int, tuple[str, str | None, str]] = MappingProxyType(
    {
        400: ("invalid_request_error", None, "Simulated bad request for model {model}."),
        401: (
            "authentication_error",
            "invalid_api_key",
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
        ),
        403: (
            "permission_error",
            "permission_denied",
            "You are not allowed to sample from model {model}.",
        ),
        404: (
            "invalid_request_error",
            "model_not_found",
            "The model `{model}` does not exist or you do not have access to it.",
        ),
        408: ("timeout_error", "timeout", "Request timed out."),
        409: ("invalid_request_error", "conflict", "Simulated conflict."),
        413: ("invalid_request_error", "request_too_large", "Request too large for {model}."),
        422: ("invalid_request_error", "unprocessable_entity", "Simulated unprocessable entity."),
        429: (
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached for {model} in organization org-simulator on requests per min "
            "(RPM): Limit 60, Used 60, Requested 1. Please try again later.",
        ),
        500: (
            "server_error",
            None,
            "The server had an error while processing your request. Sorry about that!",
        ),
        502: ("server_error", "bad_gateway", "Bad gateway."),
        503: (
            "server_error",
            "overloaded",
            "The engine is currently overloaded, please try again later.",
        ),
        504: ("server_error", "timeout", "Gateway timeout."),
    }
)


def retry_after_headers(seconds: float) -> dict[str, str]:
    """``retry-after`` in (possibly fractional) seconds plus OpenAI's ``retry-after-ms``."""
    whole = math.isclose(seconds, round(seconds))
    text = str(round(seconds)) if whole else f"{seconds:g}"
    return {"retry-after": text, "retry-after-ms": str(round(seconds * 1000))}


def simulated_error(status: int, model: str, retry_after: float | None) -> ApiError:
    """The error a real provider would answer with for ``status``."""
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    error_type, code, template = _SIMULATED.get(
        status, (default_type, None, f"Simulated error with status {status}.")
    )
    headers = retry_after_headers(retry_after) if retry_after is not None else None
    return ApiError(
        status,
        template.format(model=model),
        error_type=error_type,
        code=code,
        headers=headers,
    )
