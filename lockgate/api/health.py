"""Liveness and readiness."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from lockgate.api.http import Request, Send, send_response

__all__ = ["HealthEndpoints"]


class HealthEndpoints:
    """`/healthz`: the process answers. `/readyz`: config loaded; targets' health shown."""

    def __init__(
        self,
        warnings: list[str],
        open_access: bool,
        targets: Callable[[], dict[str, dict[str, object]]],
    ) -> None:
        self._warnings = warnings
        self._open_access = open_access
        self._targets = targets

    async def healthz(self, request: Request, send: Send) -> None:
        await send_response(send, 200, b'{"status":"ok"}', [(b"x-request-id", request.request_id)])

    async def readyz(self, request: Request, send: Send) -> None:
        body = orjson.dumps(
            {
                "status": "ready",
                "checks": {"config": "ok"},
                "open_access": self._open_access,
                "warnings": self._warnings,
                "targets": self._targets(),
            }
        )
        await send_response(send, 200, body, [(b"x-request-id", request.request_id)])
