"""The HTTP server under the app: uvicorn with uvloop and httptools, plus two additions.

uvicorn's httptools protocol accepts request lines and headers of any size; a client could grow a
worker's memory without limit. `BoundedHttpToolsProtocol` counts them and answers 431 past
`server.max_header_bytes`. It also puts a `ConnectionLost` in each request's scope, so a request
learns that its client hung up without a task of its own waiting on `receive()` (an ASGI
"extension", in `scope["extensions"]`).
"""

from __future__ import annotations

import os
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lockgate.api.http import CONNECTION_LOST, ConnectionLost
from lockgate.app import LockgateApp
from lockgate.config.models import ServerConfig

__all__ = ["BoundedHttpToolsProtocol", "uvicorn_config", "uvicorn_options"]

DEFAULT_MAX_HEADER_BYTES = ServerConfig.model_fields["max_header_bytes"].default


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools protocol that stops reading a request whose line and headers are too large."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = self.app
        self._max_header_bytes: int = (
            app.config.server.max_header_bytes
            if isinstance(app, LockgateApp)
            else DEFAULT_MAX_HEADER_BYTES
        )
        self._in_head = True  # the next bytes start a request head
        self._head_bytes = 0
        self._headers_too_large = False
        self._lost = ConnectionLost()
        self._extensions: dict[str, dict[object, object]] = {
            CONNECTION_LOST: {"signal": self._lost}
        }

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._lost.fire()

    def data_received(self, data: bytes) -> None:
        # Counted per read, not per header: a parser callback more per header would cost
        # every request. Only a read that would pass the limit is searched for the head's end.
        if self._in_head:
            room = self._max_header_bytes - self._head_bytes
            if len(data) > room and data.find(b"\r\n\r\n", 0, max(room, 0) + 4) < 0:
                self._headers_too_large = True
                self.send_400_response("request headers too large")
                return
            self._head_bytes += len(data)
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = self._extensions  # uvicorn sets none

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def send_400_response(self, msg: str) -> None:
        if not self._headers_too_large:
            super().send_400_response(msg)
            return
        body = (
            b'{"error":{"message":"Request line and headers are larger than the limit of '
            + str(self._max_header_bytes).encode()
            + b' bytes","type":"invalid_request_error","param":null,'
            b'"code":"request_headers_too_large"}}'
        )
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"x-request-id: " + os.urandom(16).hex().encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()


def uvicorn_options(server: ServerConfig, log_level: str = "info") -> dict[str, Any]:
    """Settings shared by `lockgate serve` and the test suite's servers."""
    return {
        "host": server.host,
        "port": server.port,
        "loop": "uvloop",
        "http": BoundedHttpToolsProtocol,
        "lifespan": "on",
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "log_level": log_level,
        "timeout_graceful_shutdown": 30,
    }


def uvicorn_config(app: LockgateApp, **overrides: Any) -> uvicorn.Config:
    return uvicorn.Config(app, **{**uvicorn_options(app.config.server), **overrides})
