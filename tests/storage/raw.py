"""Plain SQL against a test database, to look at what the repositories wrote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Row, inspect, text
from sqlalchemy.engine import Connection

from lockgate.storage.engine import create_engine
from lockgate.storage.tables import Base
from lockgate.storage.urls import parse_database_url


async def query(url: str, sql: str, params: Mapping[str, Any] | None = None) -> Sequence[Row[Any]]:
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(sql), dict(params or {}))
            return result.fetchall() if result.returns_rows else []
    finally:
        await engine.dispose()


async def schema_of(url: str) -> tuple[set[str], list[object]]:
    """Tables in the database, and how its schema differs from `tables.py`."""

    def look(connection: Connection) -> tuple[set[str], list[object]]:
        names = set(inspect(connection).get_table_names())
        return names, compare_metadata(MigrationContext.configure(connection), Base.metadata)

    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def key_hash(number: int) -> str:
    """A well-formed, distinct key hash per number."""
    return "sha256:" + format(number, "064x")
