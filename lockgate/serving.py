"""uvicorn's settings for the gateway: uvloop, and Lockgate's own HTTP/1.1 protocol.

uvicorn runs the processes, sockets, lifespan and graceful shutdown; requests are parsed and
answered by `api.protocol.GatewayHttpProtocol` (why: see that module and docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import uvicorn

from lockgate.api.protocol import GatewayHttpProtocol
from lockgate.app import LockgateApp
from lockgate.config.models import ServerConfig

__all__ = ["uvicorn_config", "uvicorn_options"]


def uvicorn_options(server: ServerConfig, log_level: str = "info") -> dict[str, Any]:
    """Settings shared by `lockgate serve` and the test suite's servers."""
    return {
        "host": server.host,
        "port": server.port,
        "loop": "uvloop",
        "http": GatewayHttpProtocol,
        # The largest request line + headers; uvicorn carries it to any protocol class.
        "h11_max_incomplete_event_size": server.max_header_bytes,
        "lifespan": "on",
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "log_level": log_level,
        "timeout_graceful_shutdown": 30,
    }


def uvicorn_config(app: LockgateApp, **overrides: Any) -> uvicorn.Config:
    return uvicorn.Config(app, **{**uvicorn_options(app.config.server), **overrides})
