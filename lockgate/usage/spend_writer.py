"""Budget spend to the database: batched, off the hot path, never dropped.

Settled costs are summed per (scope, period) in memory and added to the database about once a
second in one transaction. A failed write keeps its amounts and is retried with the next batch;
shutdown flushes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["SpendWriter"]

log = logging.getLogger("lockgate.usage")

AddSpend = Callable[[Sequence[tuple[str, str, int]]], Awaitable[None]]


class SpendWriter:
    def __init__(self, add: AddSpend, interval_s: float = 1.0) -> None:
        self._add = add
        self._interval_s = interval_s
        self._pending: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, scope: str, period: str, micros: int) -> None:
        if micros:
            self._pending[(scope, period)] = self._pending.get((scope, period), 0) + micros

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            await self._add([(scope, period, micros) for (scope, period), micros in batch.items()])
        except BaseException:
            for key, micros in batch.items():  # keep them for the next try
                self._pending[key] = self._pending.get(key, 0) + micros
            raise

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for attempt in range(5):
            try:
                await self.flush()
                return
            except Exception:
                log.warning("writing spend failed at shutdown (try %d of 5)", attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
        log.error("spend not written at shutdown: %s", self._pending)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.flush()
            except Exception:
                log.warning("writing spend failed; it will be retried", exc_info=True)
