"""The usage ledger writer: one row per request, batched off the hot path, never dropped.

`add(record)` only appends to a list. A background task writes the list to the database about
twice a second, in one transaction. A batch the database does not take (down, timing out) goes to
the `Journal` on disk instead of staying in memory, and a replay loop puts journaled rows into the
database once it answers again. Shutdown writes what is left, or journals it. Rows carry their
request id and inserts skip ids already stored, so a batch written twice counts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from lockgate.storage.usage import Values, as_row, from_row, usage_values
from lockgate.usage.journal import Journal
from lockgate.usage.record import UsageRecord

__all__ = ["Ledger"]

log = logging.getLogger("lockgate.usage")

Insert = Callable[[Sequence[Values]], Awaitable[None]]

REPLAY_BATCH = 1000
"""Rows per transaction when replaying the journal."""


class Ledger:
    def __init__(
        self,
        insert: Insert,
        journal: Journal,
        interval_s: float = 0.5,
        write_timeout_s: float = 5.0,
        replay_interval_s: float = 2.0,
    ) -> None:
        self._insert = insert
        self._journal = journal
        self._interval_s = interval_s
        self._write_timeout_s = write_timeout_s
        self._replay_interval_s = replay_interval_s
        self._pending: list[Values] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._writing = asyncio.Lock()

    def add(self, record: UsageRecord) -> None:
        # The row, not the record: a tuple of plain values is cheap for the garbage collector
        # to hold (and lets the record and what it references go at once).
        self._pending.append(usage_values(record))

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._write_loop()), loop.create_task(self._replay_loop())]

    async def flush(self) -> bool:
        """Write what is pending; journal it when the database does not take it. True: written."""
        if not self._pending:
            return True
        async with self._writing:
            rows, self._pending = self._pending, []
            try:
                async with asyncio.timeout(self._write_timeout_s):
                    await self._insert(rows)
                return True
            except Exception as exc:
                log.warning(
                    "writing %d usage records failed (%s); they are kept in %s and will be "
                    "written when the database answers",
                    len(rows),
                    _reason(exc),
                    self._journal.directory,
                )
                try:
                    self._journal.append([as_row(row) for row in rows])
                except OSError:
                    log.exception("journaling usage records failed; they stay in memory")
                    self._pending[:0] = rows
                return False

    async def replay(self) -> int:
        """Move journaled rows into the database; how many were written (0 if it is down)."""
        if not self._journal.pending():
            return 0
        written = 0
        async with self._writing:
            claimed = self._journal.claim()
            for index, path in enumerate(claimed):
                try:
                    written += await self._replay_file(path)
                except Exception as exc:
                    log.warning("replaying %s failed (%s); will retry", path.name, _reason(exc))
                    for left in claimed[index:]:
                        self._journal.release(left)
                    break
                self._journal.done(path)
        return written

    async def _replay_file(self, path: Path) -> int:
        rows: list[Values] = []
        count = 0
        for row in self._journal.read(path):
            rows.append(from_row(row))
            if len(rows) >= REPLAY_BATCH:
                await self._write(rows)
                count += len(rows)
                rows = []
        if rows:
            await self._write(rows)
            count += len(rows)
        if count:
            log.info("replayed %d usage records from %s", count, path.name)
        return count

    async def _write(self, rows: Sequence[Values]) -> None:
        async with asyncio.timeout(self._write_timeout_s):
            await self._insert(rows)

    async def close(self) -> None:
        """Stop the loops, write what is pending (or journal it) and replay what can be."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if await self.flush():
            with contextlib.suppress(Exception):
                await self.replay()
        self._journal.close()

    async def _write_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.flush()
            except Exception:  # never stop writing: the next round tries again
                log.exception("writing usage records failed unexpectedly")

    async def _replay_loop(self) -> None:
        while True:
            try:
                await self.replay()
            except Exception:
                log.warning("replaying the usage journal failed", exc_info=True)
            await asyncio.sleep(self._replay_interval_s)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
