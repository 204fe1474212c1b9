"""Reading the JSON request body."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from lockgate.simulate.errors import invalid_request, malformed_json


async def read_json_object(request: web.BaseRequest) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise malformed_json() from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    return body
