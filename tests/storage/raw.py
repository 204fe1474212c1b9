"""Plain SQL against a test database, to look at what the repositories wrote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, text

from lockgate.storage.engine import create_engine
from lockgate.storage.urls import parse_database_url


async def query(url: str, sql: str, params: Mapping[str, Any] | None = None) -> Sequence[Row[Any]]:
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(sql), dict(params or {}))
            return result.fetchall() if result.returns_rows else []
    finally:
        await engine.dispose()


def key_hash(number: int) -> str:
    """A well-formed, distinct key hash per number."""
    return "sha256:" + format(number, "064x")
