"""Optional request echo (``x-sim-echo-headers: 1``) so tests see what was sent upstream."""

from __future__ import annotations

from typing import Any

from aiohttp import web

ECHO_HEADER = "x-sim-echo-headers"


def wants_echo(request: web.BaseRequest) -> bool:
    return request.headers.get(ECHO_HEADER) == "1"


def echo_payload(request: web.BaseRequest, body: object) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return {
        "headers": headers,
        "path": request.path,
        "query": dict(request.query),
        "body": body,
    }
