"""The usage ledger's writes: batches of rows, idempotent by request id.

A batch replayed from the journal after an outage may hold rows the database already has (the
write went through but its answer was lost): `INSERT ... ON CONFLICT (request_id) DO NOTHING`
keeps the first copy, so replaying is always safe.

A row travels as a tuple of values in `COLUMNS` order (`usage_values`): the ledger holds one per
request, so it is built straight from the record, and batches are inserted with the driver's
`executemany`, without SQLAlchemy (whose per-row parameter processing would cost the request path
more than the rest of accounting); the conversions its column types would do (UTC datetimes, JSON
text) are done here (PostgreSQL) and in `usage_sqlite` instead, so reads through SQLAlchemy see
the same thing. The journal keeps rows as JSON objects (`as_row`, `from_row`): a
file written by one version of Lockgate stays readable by the next even if columns are added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from lockgate.storage.drivers import Driver
from lockgate.storage.usage_sqlite import COLUMNS, SqliteStatements
from lockgate.usage.record import UsageRecord

__all__ = ["COLUMNS", "UsageStore", "as_row", "from_row", "usage_values"]

Values = tuple[Any, ...]

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

    __slots__ = ("_driver", "_insert_sql", "_sqlite")

    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        marks = ", ".join("?" * len(COLUMNS))
        self._insert_sql = (
            f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (request_id) DO NOTHING"
        )
        self._sqlite = SqliteStatements()

    async def insert(self, rows: Sequence[Values]) -> None:
        """Add `rows` (from `usage_values`) in one transaction, skipping request ids stored."""
        if not rows:
            return
        if self._driver.backend == "sqlite":
            await self._driver.write(self._sqlite.batches(rows))
        else:
            await self._driver.write([(self._insert_sql, [_postgres_values(row) for row in rows])])


def _postgres_values(row: Values) -> Values:
    values = list(row)
    values[_CREATED_AT] = datetime.fromtimestamp(row[_CREATED_AT], UTC)
    tags = row[_TAGS]
    values[_TAGS] = orjson.dumps(tags).decode() if tags else "{}"
    return tuple(values)
