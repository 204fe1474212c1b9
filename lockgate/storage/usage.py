"""The usage ledger's writes: batches of rows, idempotent by request id.

A batch replayed from the journal after an outage may hold rows the database already has (the
write went through but its answer was lost): `INSERT ... ON CONFLICT (request_id) DO NOTHING`
keeps the first copy, so replaying is always safe.

A row travels as a tuple of values in `COLUMNS` order (`usage_values`): the ledger writes one per
request, so it is built straight from the record, and inserted with the driver's `executemany` on
one prepared statement. SQLAlchemy's per-row parameter processing would cost the request path
(same thread) more than the rest of accounting; the two conversions the column types would do
(UTC datetimes, JSON text) are done here instead, so reads through SQLAlchemy see the same thing.
The journal keeps rows as JSON objects (`as_row`, `from_row`): a file written by one version of
Lockgate stays readable by the next even if columns are added.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from lockgate.storage.engine import Transactions
from lockgate.storage.tables import UsageRow
from lockgate.usage.record import UsageRecord

__all__ = ["COLUMNS", "UsageStore", "as_row", "from_row", "usage_values"]

Values = tuple[Any, ...]

COLUMNS: tuple[str, ...] = tuple(UsageRow.__table__.columns.keys())
"""Every column of `usage`, in table order."""
_CREATED_AT = COLUMNS.index("created_at")
_TAGS = COLUMNS.index("tags")


def usage_values(record: UsageRecord) -> Values:
    """The ledger row of a finished request: `created_at` in epoch seconds, `tags` a dict (or
    None for none)."""
    ttft = record.ttft_s
    return (
        record.request_id,
        record.client_request_id,
        record.started_at,
        record.endpoint,
        record.key,
        record.team,
        record.subject,
        record.model,
        record.provider,
        record.target_model,
        record.prompt,
        record.prompt_version,
        record.status,
        record.error_type,
        record.input_tokens,
        record.output_tokens,
        record.cached_tokens,
        record.estimated,
        record.cost_micros,
        round(record.latency_s * 1000, 3),
        None if ttft is None else round(ttft * 1000, 3),
        record.cache_hit,
        record.attempts,
        record.stream,
        dict(record.tags) if record.tags else None,
    )


def as_row(values: Values) -> dict[str, Any]:
    """`values` as a JSON-safe object, as the journal keeps it."""
    return dict(zip(COLUMNS, values, strict=True))


def from_row(row: Mapping[str, Any]) -> Values:
    """A journaled row back as values (columns it lacks are None)."""
    return tuple(row.get(column) for column in COLUMNS)


class UsageStore:
    """The `usage` table (writes; reports are in `usage_report`)."""

    __slots__ = ("_insert_sql", "_tx")

    def __init__(self, transactions: Transactions) -> None:
        self._tx = transactions
        columns = ", ".join(COLUMNS)
        if transactions.backend == "postgresql":
            marks = ", ".join(f"${number}" for number in range(1, len(COLUMNS) + 1))
        else:
            marks = ", ".join("?" for _ in COLUMNS)
        self._insert_sql = (
            f"INSERT INTO usage ({columns}) VALUES ({marks}) ON CONFLICT (request_id) DO NOTHING"
        )

    async def insert(self, rows: Sequence[Values]) -> None:
        """Add `rows` (from `usage_values`) in one transaction, skipping request ids stored."""
        if not rows:
            return
        stored = _sqlite_values if self._tx.backend == "sqlite" else _postgres_values
        params = [stored(row) for row in rows]
        async with self._tx.write() as session:
            connection = await session.connection()
            await connection.exec_driver_sql(self._insert_sql, params)


def _sqlite_values(row: Values) -> Values:
    values = list(row)
    values[_CREATED_AT] = _sqlite_time(row[_CREATED_AT])
    values[_TAGS] = _json(row[_TAGS])
    return tuple(values)


def _postgres_values(row: Values) -> Values:
    values = list(row)
    values[_CREATED_AT] = datetime.fromtimestamp(row[_CREATED_AT], UTC)
    values[_TAGS] = _json(row[_TAGS])
    return tuple(values)


def _json(tags: Mapping[str, str] | None) -> str:
    return orjson.dumps(tags).decode() if tags else "{}"


@functools.lru_cache(maxsize=4)
def _utc_second(whole: int) -> str:
    """Most rows of a batch share their second: formatted once."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole))


def _sqlite_time(epoch_s: float) -> str:
    """The text SQLAlchemy's DateTime keeps in SQLite (naive; UTC by this schema's convention)."""
    whole = int(epoch_s)
    return f"{_utc_second(whole)}.{int((epoch_s - whole) * 1_000_000):06d}"
