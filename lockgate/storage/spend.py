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
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from lockgate.storage.engine import Transactions
from lockgate.storage.tables import SpendRow
from lockgate.storage.urls import Backend

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

__all__ = ["SpendRecord", "SpendStore"]


@dataclass(frozen=True, slots=True)
class SpendRecord:
    scope: str
    period: str
    usd_micros: int
    updated_at: datetime


class SpendStore:
    """The `spend` table."""

    __slots__ = ("_tx",)

    def __init__(self, transactions: Transactions) -> None:
        self._tx = transactions

    async def add_spend(self, entries: Sequence[tuple[str, str, int]]) -> None:
        """Add each `(scope, period, usd_micros)` to its row (created at 0), all or none."""
        totals: dict[tuple[str, str], int] = {}
        for scope, period, micros in entries:
            totals[(scope, period)] = totals.get((scope, period), 0) + int(micros)
        now = datetime.now(UTC)
        params = [
            {"scope": scope, "period": period, "usd_micros": micros, "updated_at": now}
            for (scope, period), micros in sorted(totals.items())
            if micros
        ]
        if not params:
            return
        statement = _upsert(self._tx.backend)
        async with self._tx.write() as session:
            connection = await session.connection()
            await connection.execute(statement, params)

    async def get_spend(self, scope: str, period: str) -> int:
        """Micro-dollars spent by `scope` in `period` (0 when nothing was recorded)."""
        async with self._tx.read() as session:
            value = await session.scalar(
                select(SpendRow.usd_micros).where(
                    SpendRow.scope == scope, SpendRow.period == period
                )
            )
            return int(value or 0)

    async def list_spend(self, scope_prefix: str | None = None) -> list[SpendRecord]:
        """Every row, or those whose scope starts with `scope_prefix`, by scope and period."""
        query = select(SpendRow).order_by(SpendRow.scope, SpendRow.period)
        if scope_prefix:
            query = query.where(SpendRow.scope.startswith(scope_prefix, autoescape=True))
        async with self._tx.read() as session:
            return [
                SpendRecord(row.scope, row.period, row.usd_micros, row.updated_at)
                for row in await session.scalars(query)
            ]


def _upsert(backend: Backend) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT (scope, period) DO UPDATE, adding the new amount to the stored one."""
    if backend == "postgresql":
        from sqlalchemy.dialects import postgresql  # ~2 MB: only for PostgreSQL

        pg = postgresql.insert(SpendRow)
        return pg.on_conflict_do_update(
            index_elements=["scope", "period"],
            set_={
                "usd_micros": SpendRow.usd_micros + pg.excluded.usd_micros,
                "updated_at": pg.excluded.updated_at,
            },
        )
    lite = sqlite.insert(SpendRow)
    return lite.on_conflict_do_update(
        index_elements=["scope", "period"],
        set_={
            "usd_micros": SpendRow.usd_micros + lite.excluded.usd_micros,
            "updated_at": lite.excluded.updated_at,
        },
    )
