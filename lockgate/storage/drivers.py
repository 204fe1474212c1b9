"""The database drivers (aiosqlite, asyncpg) behind one small interface, without SQLAlchemy.

What a serving worker does with its database (read the change counter, keys, teams and spend;
append usage rows; add spend; record prompt versions) is a handful of fixed statements. Running
them on the drivers directly keeps SQLAlchemy (~18 MB with its ORM) out of the worker; it is
loaded only for migrations, the admin API's key and team writes, and usage reports.

Statements are written once with `?` placeholders; `PostgresDriver` numbers them (`$1`...).
Timestamps are stored as SQLAlchemy stores them, so both layers read each other's rows: on SQLite
naive UTC text (`2026-01-31 12:00:00.000000`), on PostgreSQL `timestamptz`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from lockgate.storage.errors import DatabaseUnavailable
from lockgate.storage.urls import Backend, DatabaseUrl

if TYPE_CHECKING:
    import aiosqlite
    import asyncpg

__all__ = [
    "BUSY_TIMEOUT_S",
    "SQLITE_CACHE_KIB",
    "Driver",
    "Row",
    "Statement",
    "connect_driver",
    "describe_failure",
    "postgres_arguments",
    "sqlite_filename",
    "use_wal",
]

BUSY_TIMEOUT_S = 30.0
"""How long a SQLite connection waits for another process's write lock."""

SQLITE_CACHE_KIB = 512
"""SQLite's page cache per connection (its default: 2 MiB). The gateway appends rows and reads
small tables; the operating system caches the file anyway, so a worker need not hold more."""

POSTGRES_CONNECTIONS = 10
"""The most connections a worker's pool opens (one is kept open)."""

Row = Sequence[Any]
Statement = tuple[str, Sequence[Sequence[Any]]]
"""SQL with `?` placeholders (and no other `?`) and the parameter rows it runs with: one row
runs it once (rows it returns are kept), more run it with `executemany`."""

_PLACEHOLDER = re.compile(r"\?")


class Driver(Protocol):
    """One database, as the statements in `lockgate.storage` use it."""

    @property
    def backend(self) -> Backend: ...

    @property
    def write_turn(self) -> asyncio.Lock | None:
        """SQLite: the lock this process's write transactions take turns on (shared with
        SQLAlchemy's); PostgreSQL: None."""

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of a query, outside any write transaction."""

    async def write(self, statements: Sequence[Statement]) -> list[Row]:
        """Run `statements` in one write transaction; the rows the last one returned."""

    def encode_time(self, moment: datetime) -> Any:
        """`moment` (aware) as a statement parameter."""

    def decode_time(self, value: Any) -> datetime:
        """A stored timestamp back as an aware UTC datetime."""

    async def close(self) -> None: ...


async def connect_driver(target: DatabaseUrl) -> Driver:
    """A connected driver for `target`; `DatabaseUnavailable` (password hidden) on failure."""
    failures: tuple[type[BaseException], ...] = (
        sqlite3.Error,
        OSError,
        TimeoutError,
        TypeError,
        *_postgres_errors(target),
    )
    try:
        if target.backend == "sqlite":
            return await SqliteDriver.connect(target)
        return await PostgresDriver.connect(target)
    except failures as exc:
        # TypeError: asyncpg refusing a query parameter of the URL it does not know.
        reason = describe_failure(exc, target)
        raise DatabaseUnavailable(f"cannot open database {target.safe}: {reason}") from None


def describe_failure(exc: BaseException, target: DatabaseUrl) -> str:
    """One line saying why the database failed, without SQL text or the URL's password."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    reason = lines[0] if lines else type(cause).__name__
    if target.password:
        reason = reason.replace(target.password, "***")
    return reason


def _postgres_errors(target: DatabaseUrl) -> tuple[type[BaseException], ...]:
    if target.backend != "postgresql":
        return ()
    import asyncpg

    return (asyncpg.PostgresError, asyncpg.InterfaceError)


class _Failures:
    """Turns a driver's errors into `DatabaseUnavailable` naming the database by its safe URL."""

    def __init__(self, target: DatabaseUrl, errors: tuple[type[BaseException], ...]) -> None:
        self._target = target
        self.errors = errors

    def unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        reason = describe_failure(exc, self._target)
        return DatabaseUnavailable(f"database {self._target.safe} failed: {reason}")


class SqliteDriver:
    """Two aiosqlite connections (a thread each): one reads, one writes.

    Reads run as single statements, each its own snapshot (WAL: never blocked by a writer).
    Writes take `write_turn`, then SQLite's write lock up front (`BEGIN IMMEDIATE`): a
    transaction that read first would hold a snapshot another process's commit could make stale.
    """

    backend: Backend = "sqlite"

    def __init__(
        self, target: DatabaseUrl, reader: aiosqlite.Connection, writer: aiosqlite.Connection
    ) -> None:
        self._reader = reader
        self._writer = writer
        # ValueError: aiosqlite's answer once its connection is closed (at shutdown).
        self._failures = _Failures(target, (sqlite3.Error, OSError, ValueError))
        # Tasks of this process queue here, in order, rather than in SQLite's busy handler,
        # which polls with sleeps of up to 100 ms.
        self.write_turn: asyncio.Lock | None = asyncio.Lock()
        self._rollback: asyncio.Future[None] | None = None

    @classmethod
    async def connect(cls, target: DatabaseUrl) -> SqliteDriver:
        filename, uri = sqlite_filename(target)
        if filename in ("", ":memory:") or (uri and target.query.get("mode") == "memory"):
            raise DatabaseUnavailable(
                f"cannot open database {target.safe}: an in-memory SQLite database would be "
                "private to each connection; give a file, e.g. sqlite:///./lockgate.db"
            )
        reader = await _open_sqlite(filename, uri)
        try:
            writer = await _open_sqlite(filename, uri)
        except BaseException:
            await reader.close()
            raise
        return cls(target, reader, writer)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return list(await self._reader.execute_fetchall(sql, params))
        except self._failures.errors as exc:
            raise self._failures.unavailable(exc) from exc

    async def write(self, statements: Sequence[Statement]) -> list[Row]:
        assert self.write_turn is not None
        async with self.write_turn:
            try:
                return await self._transaction(statements)
            except self._failures.errors as exc:
                raise self._failures.unavailable(exc) from exc

    async def _transaction(self, statements: Sequence[Statement]) -> list[Row]:
        writer = self._writer
        if self._rollback is not None:  # of a cancelled write: its turn comes first
            await self._rollback
            self._rollback = None
        try:
            await writer.execute("BEGIN IMMEDIATE")
            rows: list[Row] = []
            for sql, params in statements:
                if len(params) == 1:
                    rows = list(await writer.execute_fetchall(sql, params[0]))
                else:
                    await writer.executemany(sql, params)
                    rows = []
            await writer.execute("COMMIT")
            return rows
        except BaseException as exc:
            # A statement the task no longer waits for still runs in aiosqlite's thread (a
            # BEGIN may wait there for another process's lock): the ROLLBACK queues behind it,
            # in a task of its own so that a cancelled caller need not wait for it.
            self._rollback = asyncio.ensure_future(self._roll_back())
            if not isinstance(exc, asyncio.CancelledError):
                await asyncio.shield(self._rollback)
            raise

    async def _roll_back(self) -> None:
        with contextlib.suppress(sqlite3.Error, ValueError):  # nothing to roll back, or closed
            await self._writer.execute("ROLLBACK")

    def encode_time(self, moment: datetime) -> str:
        # SQLAlchemy's text for its DateTime on SQLite: naive, UTC by this schema's convention.
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    def decode_time(self, value: Any) -> datetime:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    async def close(self) -> None:
        if self._rollback is not None:
            await self._rollback
        await self._reader.close()
        await self._writer.close()


_SQLITE3_ARGUMENTS = frozenset(
    ("uri", "timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements")
)
"""Query parameters SQLAlchemy gives the sqlite3 module rather than SQLite's URI."""


def sqlite_filename(target: DatabaseUrl) -> tuple[str, bool]:
    """What to open, and whether it is a URI: with `?uri=true` the other query parameters
    (`mode`, `cache`, ...) belong to SQLite's URI, as SQLAlchemy passes them."""
    filename = target.database or ""
    uri = target.query.get("uri", "").lower() in ("true", "yes", "on", "y", "t", "1")
    options = {k: v for k, v in target.query.items() if k not in _SQLITE3_ARGUMENTS}
    if uri and options:
        filename += "?" + "&".join(f"{key}={options[key]}" for key in sorted(options))
    return filename, uri


async def _open_sqlite(filename: str, uri: bool) -> aiosqlite.Connection:
    import aiosqlite

    # isolation_level None: the sqlite3 module issues no BEGIN of its own (it would skip it
    # before some statements); transactions begin where `SqliteDriver` says.
    connection = await aiosqlite.connect(
        filename, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=uri
    )
    try:
        await connection.execute("PRAGMA synchronous=NORMAL")  # durable across crashes in WAL
        await connection.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    except BaseException:
        await connection.close()
        raise
    return connection


async def use_wal(driver: Driver) -> str:
    """Put a SQLite database in WAL mode, a lasting setting of the file; the mode it is in.

    Switching needs the file to itself for a moment, and SQLite refuses the switch at once,
    without waiting out its busy timeout, while another connection is in a transaction: so it
    is retried. Once the file is in WAL mode this is a plain read.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            rows = await driver.fetch("PRAGMA journal_mode=WAL")
            return str(rows[0][0])
        except DatabaseUnavailable as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


_ASYNCPG_NUMBERS = {
    "statement_cache_size": int,
    "max_cached_statement_lifetime": int,
    "max_cacheable_statement_size": int,
    "command_timeout": float,
}
"""asyncpg's connect arguments that are numbers (a URL's query holds text)."""


def postgres_arguments(target: DatabaseUrl) -> dict[str, Any]:
    """asyncpg's connect arguments: the URL's parts, then its query parameters, which win (as
    with SQLAlchemy: `?host=/var/run/postgresql` reaches a Unix socket).

    `prepared_statement_cache_size` (SQLAlchemy's, set to 0 behind PgBouncer) becomes asyncpg's
    `statement_cache_size`.
    """
    query: dict[str, Any] = dict(target.query)
    if "prepared_statement_cache_size" in query:
        query["statement_cache_size"] = query.pop("prepared_statement_cache_size")
    for name, kind in _ASYNCPG_NUMBERS.items():
        if name in query:
            try:
                query[name] = kind(query[name])
            except ValueError:
                raise DatabaseUnavailable(f"{name} is not a number in {target.safe}") from None
    return {
        "host": target.host,
        "port": target.port,
        "user": target.username,
        "password": target.password,
        "database": target.database,
        "timeout": target.connect_timeout_s,
        **query,
    }


class PostgresDriver:
    """An asyncpg pool; a write is one transaction on one of its connections."""

    backend: Backend = "postgresql"
    write_turn: asyncio.Lock | None = None

    def __init__(self, target: DatabaseUrl, pool: asyncpg.Pool) -> None:
        self._pool = pool
        import asyncpg

        errors = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
        self._failures = _Failures(target, errors)
        self._lost = (
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            asyncpg.OperatorInterventionError,  # the server shut the connection down
            OSError,
        )
        self._numbered: dict[str, str] = {}

    @classmethod
    async def connect(cls, target: DatabaseUrl) -> PostgresDriver:
        import asyncpg

        pool = await asyncpg.create_pool(
            min_size=1, max_size=POSTGRES_CONNECTIONS, **postgres_arguments(target)
        )
        return cls(target, pool)

    def _sql(self, sql: str) -> str:
        numbered = self._numbered.get(sql)
        if numbered is None:
            count = iter(range(1, sql.count("?") + 1))
            numbered = _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)
            self._numbered[sql] = numbered
        return numbered

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            try:
                return list(await self._pool.fetch(self._sql(sql), *params))
            except self._lost:
                # A pooled connection the server closed (restart, idle timeout): the pool
                # reconnects, and a read is safe to run again.
                return list(await self._pool.fetch(self._sql(sql), *params))
        except self._failures.errors as exc:
            raise self._failures.unavailable(exc) from exc

    async def write(self, statements: Sequence[Statement]) -> list[Row]:
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                rows: list[Row] = []
                for sql, params in statements:
                    if len(params) == 1:
                        rows = list(await connection.fetch(self._sql(sql), *params[0]))
                    else:
                        await connection.executemany(self._sql(sql), params)
                        rows = []
                return rows
        except self._failures.errors as exc:
            raise self._failures.unavailable(exc) from exc

    def encode_time(self, moment: datetime) -> datetime:
        return moment.astimezone(UTC)

    def decode_time(self, value: Any) -> datetime:
        moment: datetime = value
        return moment.astimezone(UTC)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), 5)
        except TimeoutError:
            self._pool.terminate()
