"""Budget spend per (scope, period), in integer micro-dollars.

Several workers add to the same rows at once, so an addition is an upsert that adds in the
database (`usd_micros = usd_micros + delta`), never a read-modify-write in Python. A batch runs in
one transaction, its rows in a fixed order so two concurrent batches lock them in the same order
and cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from lockgate.storage.drivers import Driver

__all__ = ["SpendRecord", "SpendStore"]

_ADD = (
    "INSERT INTO spend (scope, period, usd_micros, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (scope, period) DO UPDATE SET "
    "usd_micros = spend.usd_micros + excluded.usd_micros, updated_at = excluded.updated_at"
)
_GET = "SELECT usd_micros FROM spend WHERE scope = ? AND period = ?"
_LIST = "SELECT scope, period, usd_micros, updated_at FROM spend"


@dataclass(frozen=True, slots=True)
class SpendRecord:
    scope: str
    period: str
    usd_micros: int
    updated_at: datetime


class SpendStore:
    """The `spend` table."""

    __slots__ = ("_driver",)

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def add_spend(self, entries: Sequence[tuple[str, str, int]]) -> None:
        """Add each `(scope, period, usd_micros)` to its row (created at 0), all or none."""
        totals: dict[tuple[str, str], int] = {}
        for scope, period, micros in entries:
            totals[(scope, period)] = totals.get((scope, period), 0) + int(micros)
        now = self._driver.encode_time(datetime.now(UTC))
        params = [
            (scope, period, micros, now)
            for (scope, period), micros in sorted(totals.items())
            if micros
        ]
        if params:
            await self._driver.write([(_ADD, params)])

    async def get_spend(self, scope: str, period: str) -> int:
        """Micro-dollars spent by `scope` in `period` (0 when nothing was recorded)."""
        rows = await self._driver.fetch(_GET, (scope, period))
        return int(rows[0][0]) if rows else 0

    async def list_spend(self, scope_prefix: str | None = None) -> list[SpendRecord]:
        """Every row, or those whose scope starts with `scope_prefix`, by scope and period."""
        if scope_prefix:
            pattern = "".join(f"/{c}" if c in "/%_" else c for c in scope_prefix) + "%"
            sql, params = f"{_LIST} WHERE scope LIKE ? ESCAPE '/'", [pattern]
        else:
            sql, params = _LIST, []
        rows = await self._driver.fetch(f"{sql} ORDER BY scope, period", params)
        return [
            SpendRecord(scope, period, int(micros), self._driver.decode_time(updated))
            for scope, period, micros, updated in rows
        ]
