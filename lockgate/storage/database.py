"""`Database`: one handle on the gateway's database, migrated to the latest schema when opened.

`db = await Database.open(config.storage.database)` at startup, then `db.keys`, `db.teams`,
`db.spend`, `db.usage`, `db.prompt_versions` and `await db.current_revision()`;
`await db.close()` at shutdown.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lockgate.storage.engine import (
    UNAVAILABLE,
    Transactions,
    create_engine,
    describe_failure,
    use_wal,
)
from lockgate.storage.errors import DatabaseUnavailable
from lockgate.storage.keys import KeyStore
from lockgate.storage.prompt_versions import PromptVersionStore
from lockgate.storage.revision import bump_revision, read_revision
from lockgate.storage.schema_version import SCHEMA_HEAD, Migration, current_schema
from lockgate.storage.spend import SpendStore
from lockgate.storage.teams import TeamStore
from lockgate.storage.urls import Backend, DatabaseUrl, parse_database_url
from lockgate.storage.usage import UsageStore
from lockgate.storage.usage_report import UsageReport

__all__ = ["Database", "upgrade"]


class Database:
    """The repositories (`keys`, `teams`, `spend`, `usage`, `prompt_versions`) and the change
    counter."""

    __slots__ = (
        "_engine",
        "_target",
        "_tx",
        "keys",
        "migration",
        "prompt_versions",
        "spend",
        "teams",
        "usage",
        "usage_report",
    )

    def __init__(self, engine: AsyncEngine, target: DatabaseUrl, migration: Migration) -> None:
        self._engine = engine
        self._target = target
        self._tx = Transactions(engine, target)
        self.migration = migration
        """What opening the database migrated (`before == after` when it was up to date)."""
        self.keys = KeyStore(self._tx)
        self.teams = TeamStore(self._tx)
        self.spend = SpendStore(self._tx)
        self.prompt_versions = PromptVersionStore(self._tx)
        self.usage = UsageStore(self._tx)
        self.usage_report = UsageReport(self._tx)

    @classmethod
    async def open(cls, url: str) -> Database:
        """Connect to `url` (the config's `storage.database`) and migrate it to the latest schema.

        Raises `DatabaseUnavailable`, with the password hidden, when the URL is unusable, the
        database cannot be reached, or its schema is newer than this version of Lockgate.
        """
        target = parse_database_url(url)
        sqlite_file = target.sqlite_file
        if sqlite_file is not None and not sqlite_file.parent.is_dir():
            raise DatabaseUnavailable(
                f"cannot open database {target.safe}: directory {sqlite_file.parent} does not exist"
            )
        engine = create_engine(target)
        try:
            if target.backend == "sqlite":
                await use_wal(engine)
            migration = await _migrate(engine, target)
        except BaseException as exc:
            await engine.dispose()
            # TypeError: asyncpg refusing a query parameter of the URL it does not know.
            if isinstance(exc, (*UNAVAILABLE, TypeError)):
                reason = describe_failure(exc, target)
                raise DatabaseUnavailable(f"cannot open database {target.safe}: {reason}") from None
            raise
        return cls(engine, target, migration)

    @property
    def url(self) -> str:
        """The database URL with its password hidden."""
        return self._target.safe

    @property
    def backend(self) -> Backend:
        return self._target.backend

    async def ping(self) -> None:
        """Raise `DatabaseUnavailable` unless the database answers a query."""
        async with self._tx.read() as session:
            await session.execute(text("SELECT 1"))

    async def current_revision(self) -> int:
        """The change counter: it moves whenever a key or team changes (cheap; poll it)."""
        async with self._tx.read() as session:
            return await read_revision(session)

    async def bump_revision(self) -> int:
        """Move the change counter on its own, so every worker reloads keys and teams."""
        async with self._tx.write() as session:
            return await bump_revision(session)

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def _migrate(engine: AsyncEngine, target: DatabaseUrl) -> Migration:
    """Migrate to the newest schema; Alembic is loaded only when there is something to do."""
    before = await current_schema(engine)
    if before == SCHEMA_HEAD:
        return Migration(before, before)
    from alembic.util import CommandError

    from lockgate.storage.migrate import migrate

    try:
        return await migrate(engine)
    except CommandError as exc:
        raise DatabaseUnavailable(
            f"cannot migrate database {target.safe}: {exc} "
            "(was it upgraded by a newer version of Lockgate?)"
        ) from None


async def upgrade(url: str) -> Migration:
    """Migrate the database at `url` to the latest schema (`lockgate db upgrade`)."""
    database = await Database.open(url)
    await database.close()
    return database.migration
