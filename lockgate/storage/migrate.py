"""Bring a database to the latest schema: the Alembic migrations shipped in `migrations/`.

Several worker processes may start at once, each migrating before it serves. The upgrade runs
in one transaction that first takes a database-wide lock, so exactly one process applies a
migration and the others, once they get the lock, find nothing left to do. On PostgreSQL the lock
is a transaction-level advisory lock (released at commit or rollback, so a crashed process cannot
leave it held); on SQLite it is the write lock, taken by `BEGIN IMMEDIATE`.

Alembic keeps the running migration in module globals (`alembic.context`, `alembic.op`), so
within one process migrations also take turns on a process-wide lock, whatever database, event
loop or thread they are for.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from lockgate.storage.engine import WRITE_OPTION
from lockgate.storage.schema_version import Migration

__all__ = ["MIGRATION_LOCK", "Migration", "head_revision", "migrate"]

MIGRATIONS = Path(__file__).with_name("migrations")

MIGRATION_LOCK = int.from_bytes(b"Lockgate", "big")
"""PostgreSQL advisory lock key held while migrating (any fixed 64-bit number would do)."""

_ALEMBIC_TURN = threading.Lock()
"""Held while this process runs Alembic (see the module docstring)."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    # ConfigParser interpolates `%`, which a path may contain.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The revision of the newest migration shipped with this version of Lockgate."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def migrate(engine: AsyncEngine) -> Migration:
    """Apply every migration not yet applied, under the migration lock."""
    writer = engine.execution_options(**{WRITE_OPTION: True})
    async with _alembic_turn(), writer.begin() as connection:
        if connection.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            await connection.execute(lock, {"key": MIGRATION_LOCK})
        return await connection.run_sync(_upgrade)


@asynccontextmanager
async def _alembic_turn() -> AsyncIterator[None]:
    # Polled: an asyncio.Event would tie the lock to one event loop, and a thread blocked in
    # acquire() would take the lock even after the waiting task was cancelled.
    while not _ALEMBIC_TURN.acquire(blocking=False):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        _ALEMBIC_TURN.release()


def _upgrade(connection: Connection) -> Migration:
    before = MigrationContext.configure(connection).get_current_revision()
    command.upgrade(alembic_config(connection), "head")
    after = MigrationContext.configure(connection).get_current_revision()
    return Migration(before, after)


def main() -> int:
    """`python -m lockgate.storage.migrate`: migrate the database whose URL is on stdin.

    `lockgate serve` runs this before its workers start, so that they find the schema current and
    never load Alembic. The URL comes on stdin, not argv, where other users could read its
    password. Exit code 1 when the database is unusable; the worker's own attempt says why.
    """
    from lockgate.storage.database import upgrade
    from lockgate.storage.errors import DatabaseUnavailable

    try:
        asyncio.run(upgrade(sys.stdin.read().strip()))
    except DatabaseUnavailable:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
