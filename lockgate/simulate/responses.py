"""Small helpers turning payloads into aiohttp responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from lockgate.simulate.errors import ApiError

JSON_CONTENT_TYPE = "application/json"


def json_bytes_response(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    response = web.Response(body=body, status=status, headers=headers)
    response.content_type = JSON_CONTENT_TYPE
    return response


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return json_bytes_response(orjson.dumps(payload), status, headers)


def error_response(error: ApiError) -> web.Response:
    return json_response(error.body(), error.status, error.headers)
