"""Which schema a database has, read without Alembic.

Alembic (and Mako and Pygments under it) costs a worker ~15 MB of memory and a third of a second
to import, SQLAlchemy another 18. Nearly every start finds the database already at the newest
schema, so `Database.open` asks for the revision with plain queries on the driver and loads
Alembic only when there is something to migrate; `lockgate serve` migrates in a short-lived child
process before its workers start.
"""

from __future__ import annotations

from dataclasses import dataclass

from lockgate.storage.drivers import Driver

__all__ = ["SCHEMA_HEAD", "Migration", "current_schema"]

SCHEMA_HEAD = "0003"
"""The revision of the newest migration in `migrations/versions` (a test keeps them equal)."""


@dataclass(frozen=True)
class Migration:
    """What an upgrade did: the schema revision before and after (None: no schema yet)."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


_HAS_VERSION_TABLE = {
    "sqlite": "SELECT count(*) FROM sqlite_master "
    "WHERE type = 'table' AND name = 'alembic_version'",
    "postgresql": "SELECT count(*) FROM (SELECT to_regclass('alembic_version') AS t) AS r "
    "WHERE t IS NOT NULL",
}


async def current_schema(driver: Driver) -> str | None:
    """The database's schema revision; None when it has none yet."""
    exists = await driver.fetch(_HAS_VERSION_TABLE[driver.backend])
    if not exists[0][0]:
        return None
    versions = await driver.fetch("SELECT version_num FROM alembic_version")
    return str(versions[0][0]) if len(versions) == 1 else None
