"""`Database`: one handle on the gateway's database, migrated to the latest schema when opened.

`db = await Database.open(config.storage.database)` at startup, then `db.keys`, `db.teams`,
`db.spend`, `db.usage`, `db.prompt_versions`, `db.usage_report` and
`await db.current_revision()`; `await db.close()` at shutdown.

What a serving worker uses (the change counter, `directory()`, spend, usage and prompt-version
writes) runs on the driver; `keys`, `teams` and `usage_report`, which need SQLAlchemy, are built
on first use (see `orm.py`).
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self

from lockgate.storage.drivers import Driver, connect_driver, describe_failure, use_wal
from lockgate.storage.errors import DatabaseUnavailable
from lockgate.storage.prompt_versions import PromptVersionStore
from lockgate.storage.records import StoredKey, StoredTeam, read_keys, read_teams
from lockgate.storage.schema_version import SCHEMA_HEAD, Migration, current_schema
from lockgate.storage.spend import SpendStore
from lockgate.storage.urls import Backend, DatabaseUrl, parse_database_url
from lockgate.storage.usage import UsageStore

if TYPE_CHECKING:
    from lockgate.storage.keys import KeyStore
    from lockgate.storage.orm import OrmRepositories
    from lockgate.storage.teams import TeamStore
    from lockgate.storage.usage_report import UsageReport

__all__ = ["Database", "upgrade"]

READ_REVISION = "SELECT value FROM revision WHERE id = 1"
BUMP_REVISION = "UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value"
"""The change counter (`revision.py`) on the driver; key and team writes bump it in SQLAlchemy."""


class Database:
    """The repositories (`keys`, `teams`, `spend`, `usage`, `prompt_versions`, `usage_report`)
    and the change counter."""

    __slots__ = ("_driver", "_orm", "_target", "migration", "prompt_versions", "spend", "usage")

    def __init__(self, driver: Driver, target: DatabaseUrl, migration: Migration) -> None:
        self._driver = driver
        self._target = target
        self._orm: OrmRepositories | None = None
        self.migration = migration
        """What opening the database migrated (`before == after` when it was up to date)."""
        self.spend = SpendStore(driver)
        self.prompt_versions = PromptVersionStore(driver)
        self.usage = UsageStore(driver)

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
        driver = await connect_driver(target)
        try:
            if target.backend == "sqlite":
                await use_wal(driver)
            migration = await _migrate(driver, target)
        except BaseException as exc:
            await driver.close()
            if isinstance(exc, DatabaseUnavailable) and exc.__cause__ is not None:
                reason = describe_failure(exc.__cause__, target)
                raise DatabaseUnavailable(f"cannot open database {target.safe}: {reason}") from None
            raise
        return cls(driver, target, migration)

    @property
    def url(self) -> str:
        """The database URL with its password hidden."""
        return self._target.safe

    @property
    def backend(self) -> Backend:
        return self._target.backend

    @property
    def keys(self) -> KeyStore:
        return self._repositories().keys

    @property
    def teams(self) -> TeamStore:
        return self._repositories().teams

    @property
    def usage_report(self) -> UsageReport:
        return self._repositories().usage_report

    def _repositories(self) -> OrmRepositories:
        if self._orm is None:
            from lockgate.storage.orm import OrmRepositories

            self._orm = OrmRepositories(self._driver, self._target)
        return self._orm

    async def ping(self) -> None:
        """Raise `DatabaseUnavailable` unless the database answers a query."""
        await self._driver.fetch("SELECT 1")

    async def current_revision(self) -> int:
        """The change counter: it moves whenever a key or team changes (cheap; poll it)."""
        rows = await self._driver.fetch(READ_REVISION)
        return int(rows[0][0]) if rows else 0

    async def bump_revision(self) -> int:
        """Move the change counter on its own, so every worker reloads keys and teams."""
        rows = await self._driver.write([(BUMP_REVISION, [()])])
        return int(rows[0][0])

    async def directory(self) -> tuple[list[StoredKey], list[StoredTeam]]:
        """Every key not revoked (expiry is checked at use time) and every team, for a worker's
        in-memory directory."""
        return await read_keys(self._driver, include_revoked=False), await read_teams(self._driver)

    async def close(self) -> None:
        if self._orm is not None:
            await self._orm.close()
        await self._driver.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def _migrate(driver: Driver, target: DatabaseUrl) -> Migration:
    """Migrate to the newest schema; SQLAlchemy and Alembic are loaded only when there is
    something to do."""
    before = await current_schema(driver)
    if before == SCHEMA_HEAD:
        return Migration(before, before)
    from alembic.util import CommandError

    from lockgate.storage.engine import UNAVAILABLE, create_engine
    from lockgate.storage.migrate import migrate

    engine = create_engine(target)
    try:
        return await migrate(engine)
    except CommandError as exc:
        raise DatabaseUnavailable(
            f"cannot migrate database {target.safe}: {exc} "
            "(was it upgraded by a newer version of Lockgate?)"
        ) from None
    except (*UNAVAILABLE, TypeError) as exc:
        reason = describe_failure(exc, target)
        raise DatabaseUnavailable(f"cannot open database {target.safe}: {reason}") from None
    finally:
        await engine.dispose()


async def upgrade(url: str) -> Migration:
    """Migrate the database at `url` to the latest schema (`lockgate db upgrade`)."""
    database = await Database.open(url)
    await database.close()
    return database.migration
