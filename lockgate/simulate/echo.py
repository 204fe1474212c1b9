"""Optional request echo (``x-sim-echo-headers: 1``) so tests see what was sent upstream.

Echo requests get a ``simulator`` field in JSON answers, and are logged for ``GET /sim/echoes``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from lockgate.simulate.responses import json_response
from lockgate.simulate.state import STATE_KEY

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
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


@web.middleware
async def record_echoes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Keep what each echo request carried, for ``GET /sim/echoes``.

    The ``simulator`` field of an answer reaches a client only when the answer is passed on as
    is; a gateway translating another format (Anthropic, Gemini) drops it. The log does not
    depend on the answer, and covers streaming requests too.
    """
    if wants_echo(request) and request.can_read_body:
        raw = await request.read()  # aiohttp keeps it: the handler reads it again
        try:
            body: object = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        request.app[STATE_KEY].echoes.append(echo_payload(request, body))
    return await handler(request)


async def echoes(request: web.Request) -> web.Response:
    """``GET /sim/echoes``: the recorded echo requests, oldest first."""
    return json_response(list(request.app[STATE_KEY].echoes))
