"""The SQLAlchemy async engine, and the two kinds of transaction the repositories use.

SQLite needs care to be shared by several worker processes: WAL journal mode (readers never block
the writer; set once when the database is opened, see `drivers.use_wal`), a busy timeout (a
writer waits for the lock instead of failing with "database is locked"), and write transactions
that take the write lock up front (`BEGIN IMMEDIATE`). A transaction that reads first and writes
later would otherwise hold a snapshot that another process's commit makes stale, and SQLite
fails such a write at once, without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from lockgate.storage.drivers import BUSY_TIMEOUT_S, SQLITE_CACHE_KIB, describe_failure
from lockgate.storage.errors import DatabaseUnavailable
from lockgate.storage.urls import Backend, DatabaseUrl

__all__ = ["UNAVAILABLE", "Transactions", "create_engine"]

WRITE_OPTION = "lockgate_write"
"""Execution option marking a connection whose transaction will write (SQLite: BEGIN IMMEDIATE)."""

UNAVAILABLE = (DBAPIError, PoolTimeout, sqlite3.Error, OSError, TimeoutError)
"""What failing to reach or use the database raises (driver errors arrive wrapped in DBAPIError)."""


def create_engine(target: DatabaseUrl) -> AsyncEngine:
    """An engine for `target`; nothing is connected until first use."""
    if target.backend == "sqlite":
        # sqlite3's `timeout` is SQLite's busy timeout, set before the first statement runs.
        engine = create_async_engine(target.url, connect_args={"timeout": BUSY_TIMEOUT_S})
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        target.url, pool_pre_ping=True, connect_args={"timeout": target.connect_timeout_s}
    )


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # Stop the sqlite3 driver from issuing its own BEGIN (it skips it before SELECT and DDL);
    # `_sqlite_begin` issues it instead, so every transaction, DDL included, is a real one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across crashes in WAL mode
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Transactions:
    """Sessions for the repositories: `read()` for queries, `write()` for changes.

    Failures to reach the database come out as `DatabaseUnavailable`, naming the database by its
    safe URL; constraint violations (`IntegrityError`) pass through for the caller to explain.
    """

    __slots__ = ("_readers", "_target", "_write_turn", "_writers")

    def __init__(
        self, engine: AsyncEngine, target: DatabaseUrl, write_turn: asyncio.Lock | None
    ) -> None:
        self._readers = async_sessionmaker(engine, expire_on_commit=False)
        writer = engine.execution_options(**{WRITE_OPTION: True})
        self._writers = async_sessionmaker(writer, expire_on_commit=False)
        self._target = target
        # SQLite has one writer at a time: tasks of this process queue on the driver's lock, in
        # order, rather than in SQLite's busy handler, which polls with sleeps of up to 100 ms.
        self._write_turn = write_turn

    @property
    def backend(self) -> Backend:
        return self._target.backend

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction is rolled back (released) at the end."""
        try:
            async with self._readers() as session:
                yield session
        except IntegrityError:
            raise
        except UNAVAILABLE as exc:
            raise self.unavailable(exc) from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed at the end unless the body raises."""
        async with self._write_turn or contextlib.nullcontext(), self._write_session() as session:
            yield session

    @asynccontextmanager
    async def _write_session(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self._writers.begin() as session:
                yield session
        except IntegrityError:
            raise
        except UNAVAILABLE as exc:
            raise self.unavailable(exc) from exc

    def unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"database {self._target.safe} failed: {describe_failure(exc, self._target)}"
        )
