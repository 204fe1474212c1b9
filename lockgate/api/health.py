"""Liveness and readiness."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from lockgate.api.http import Request, Send, send_response
from lockgate.auth.identity import Identifier

__all__ = ["HealthEndpoints"]


class HealthEndpoints:
    """`/healthz`: the process answers. `/readyz`: config loaded, database and Redis reachable
    (503 when one is not); targets' health and whether the gateway runs open are shown."""

    def __init__(
        self,
        warnings: list[str],
        identifier: Identifier,
        targets: Callable[[], dict[str, dict[str, object]]],
        checks: Callable[[], Awaitable[dict[str, str]]],
    ) -> None:
        self._warnings = warnings
        self._identifier = identifier
        self._targets = targets
        self._checks = checks

    async def healthz(self, request: Request, send: Send) -> None:
        await send_response(send, 200, b'{"status":"ok"}', [(b"x-request-id", request.request_id)])

    async def readyz(self, request: Request, send: Send) -> None:
        checks = await self._checks()
        ready = all(state == "ok" for state in checks.values())
        body = orjson.dumps(
            {
                "status": "ready" if ready else "not ready",
                "checks": checks,
                "open_access": self._identifier.open,
                "warnings": self._warnings,
                "targets": self._targets(),
            }
        )
        status = 200 if ready else 503
        await send_response(send, status, body, [(b"x-request-id", request.request_id)])
