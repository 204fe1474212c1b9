"""`GET /metrics`: Prometheus text exposition (every worker's numbers with several workers)."""

from __future__ import annotations

from lockgate.api.http import Request, Send, send_response
from lockgate.telemetry.metrics import Metrics

__all__ = ["MetricsEndpoint"]


class MetricsEndpoint:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def metrics(self, request: Request, send: Send) -> None:
        body, content_type = self._metrics.render()
        await send_response(
            send, 200, body, [(b"x-request-id", request.request_id)], content_type.encode()
        )
