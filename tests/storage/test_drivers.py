"""The drivers under the serving path: URL parameters as SQLAlchemy would pass them, and SQLite
writes that survive a cancelled transaction."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from lockgate.storage import Database, DatabaseUnavailable
from lockgate.storage.drivers import postgres_arguments, sqlite_filename
from lockgate.storage.urls import parse_database_url


def test_sqlite_uri_options_go_to_sqlite_and_driver_options_do_not() -> None:
    target = parse_database_url("sqlite:///file:data.db?mode=ro&uri=true&cache=shared&timeout=5")
    assert sqlite_filename(target) == ("file:data.db?cache=shared&mode=ro", True)
    assert sqlite_filename(parse_database_url("sqlite:///data.db?mode=ro")) == ("data.db", False)


def test_postgres_query_parameters_win_over_the_url_parts() -> None:
    target = parse_database_url(
        "postgresql://gw:pw@db.internal:5433/lg?host=/var/run/postgresql"
        "&prepared_statement_cache_size=0&command_timeout=2.5"
    )
    arguments = postgres_arguments(target)
    assert arguments["host"] == "/var/run/postgresql"
    assert (arguments["port"], arguments["user"], arguments["database"]) == (5433, "gw", "lg")
    assert arguments["statement_cache_size"] == 0
    assert "prepared_statement_cache_size" not in arguments
    assert arguments["command_timeout"] == 2.5
    assert arguments["timeout"] == 10.0


def test_a_postgres_number_parameter_that_is_no_number_is_named() -> None:
    target = parse_database_url("postgresql://gw:hunter2@db/lg?statement_cache_size=many")
    with pytest.raises(DatabaseUnavailable, match="statement_cache_size is not a number") as caught:
        postgres_arguments(target)
    assert "hunter2" not in str(caught.value)


async def test_postgres_opens_with_the_host_and_cache_size_from_the_query(
    postgres_url: str,
) -> None:
    url = make_url(postgres_url)
    given = url.set(host="nowhere.invalid").update_query_dict(
        {"host": url.host or "", "prepared_statement_cache_size": "0"}
    )
    async with await Database.open(given.render_as_string(hide_password=False)) as db:
        await db.spend.add_spend([("team:a", "total", 5)])
        assert await db.spend.get_spend("team:a", "total") == 5


async def test_in_memory_sqlite_uris_are_refused_too() -> None:
    with pytest.raises(DatabaseUnavailable, match="in-memory SQLite"):
        await Database.open("sqlite:///file:mem1?mode=memory&uri=true")


async def test_a_read_only_sqlite_uri_reads_and_refuses_writes(sqlite_url: str) -> None:
    async with await Database.open(sqlite_url) as db:
        await db.spend.add_spend([("team:a", "total", 7)])
    path = make_url(sqlite_url).database
    async with await Database.open(f"sqlite:///file:{path}?mode=ro&uri=true") as db:
        assert await db.spend.get_spend("team:a", "total") == 7
        with pytest.raises(DatabaseUnavailable, match=re.escape("readonly")):
            await db.spend.add_spend([("team:a", "total", 1)])


async def test_a_write_cancelled_while_waiting_for_the_lock_leaves_no_transaction_open(
    sqlite_url: str,
) -> None:
    path = Path(str(make_url(sqlite_url).database))
    async with await Database.open(sqlite_url) as db:
        other = sqlite3.connect(path, timeout=0.5, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            waiting = asyncio.create_task(db.spend.add_spend([("team:a", "total", 1)]))
            await asyncio.sleep(0.3)  # in BEGIN IMMEDIATE, in SQLite's busy handler
            waiting.cancel()
            cancelled_at = time.monotonic()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert time.monotonic() - cancelled_at < 1  # not held until the BEGIN ends
            other.execute("COMMIT")  # the cancelled BEGIN now goes through, in its thread
            await asyncio.sleep(0.3)
            # ... and is rolled back: this process writes again, and so do others.
            await db.spend.add_spend([("team:a", "total", 2)])
            other.execute("BEGIN IMMEDIATE")
            other.execute("COMMIT")
            assert await db.spend.get_spend("team:a", "total") == 2
        finally:
            other.close()
