"""Liveness and readiness."""

from __future__ import annotations

import orjson

from lockgate.api.http import Request, Send, send_response

__all__ = ["HealthEndpoints"]


class HealthEndpoints:
    """`/healthz`: the process answers. `/readyz`: config loaded and the gateway can serve."""

    def __init__(self, warnings: list[str], open_access: bool) -> None:
        self._ready_body = orjson.dumps(
            {
                "status": "ready",
                "checks": {"config": "ok"},
                "open_access": open_access,
                "warnings": warnings,
            }
        )

    async def healthz(self, request: Request, send: Send) -> None:
        await send_response(send, 200, b'{"status":"ok"}', [(b"x-request-id", request.request_id)])

    async def readyz(self, request: Request, send: Send) -> None:
        await send_response(send, 200, self._ready_body, [(b"x-request-id", request.request_id)])
