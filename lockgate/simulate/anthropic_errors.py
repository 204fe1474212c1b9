"""Anthropic-shaped errors: `{"type": "error", "error": {"type", "message"}, "request_id"}`.

Handlers raise the shared :class:`ApiError`; for the Anthropic routes it is rendered here, its
Anthropic error type following from the status, as Anthropic's API answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from random import getrandbits
from types import MappingProxyType
from typing import Any

import orjson
from aiohttp import web

from lockgate.simulate.errors import ApiError, retry_after_headers
from lockgate.simulate.responses import json_response

OVERLOADED = 529
_TYPES: Mapping[int, str] = MappingProxyType(
    {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        504: "timeout_error",
        OVERLOADED: "overloaded_error",
    }
)
# status -> message of a simulated failure; "{model}" is filled in.
_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        400: "Simulated bad request for model {model}.",
        401: "invalid x-api-key",
        403: "Your API key does not have permission to use the specified resource.",
        404: "model: {model}",
        413: "Request exceeds the maximum allowed number of bytes.",
        429: (
            "This request would exceed the rate limit for your organization of 50 requests per "
            "minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."
        ),
        500: "Internal server error",
        504: "Request timed out.",
        OVERLOADED: "Overloaded",
    }
)


def error_type(status: int) -> str:
    return _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def request_id() -> str:
    return f"req_sim_{getrandbits(96):024x}"


def error_body(status: int, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type(status), "message": message},
        "request_id": request_id(),
    }


def anthropic_error_response(error: ApiError) -> web.Response:
    return json_response(error_body(error.status, error.message), error.status, error.headers)


def invalid(message: str) -> ApiError:
    return ApiError(400, message)


def missing_api_key() -> ApiError:
    return ApiError(401, "x-api-key header is required")


def simulated_failure(status: int, model: str, retry_after: float | None) -> ApiError:
    """What Anthropic answers for `status` (the `status` and `fail_times` directives)."""
    template = _MESSAGES.get(status, f"Simulated error with status {status}.")
    headers = None
    if retry_after is not None:  # Anthropic sends `retry-after` only (no `retry-after-ms`)
        headers = {"retry-after": retry_after_headers(retry_after)["retry-after"]}
    return ApiError(status, template.format(model=model), headers=headers)


def error_event(status: int, message: str) -> bytes:
    """An in-band `event: error` (Anthropic's way of failing a stream that already started)."""
    body = {"type": "error", "error": {"type": error_type(status), "message": message}}
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
