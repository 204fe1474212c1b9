"""Live counters exposed on ``GET /sim/stats``; one instance per app."""

from __future__ import annotations

from typing import Any


class SimulatorStats:
    """Plain counters, updated from the (single-threaded) event loop."""

    __slots__ = ("by_model", "by_status", "cancelled", "in_flight", "total_requests")

    def __init__(self) -> None:
        self.total_requests = 0
        self.in_flight = 0
        self.cancelled = 0
        self.by_model: dict[str, int] = {}
        self.by_status: dict[int, int] = {}

    def record_model(self, model: str) -> None:
        self.by_model[model] = self.by_model.get(model, 0) + 1

    def record_status(self, status: int) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def reset(self) -> None:
        # In-flight requests are still running, so that gauge survives a reset.
        self.total_requests = 0
        self.cancelled = 0
        self.by_model.clear()
        self.by_status.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "total_requests": self.total_requests,
            "in_flight": self.in_flight,
            "cancelled": self.cancelled,
            "requests_by_model": dict(self.by_model),
            "responses_by_status": {str(k): v for k, v in sorted(self.by_status.items())},
        }


class FailureBudget:
    """State behind the ``fail_times``/``key`` directives.

    The first ``times`` requests seen for a key fail; later ones succeed.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def should_fail(self, key: str, times: int) -> bool:
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        return seen < times

    def reset(self) -> None:
        self._seen.clear()
