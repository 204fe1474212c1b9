"""Database URLs: the config's form mapped to an async driver, and rendered without the password.

`storage.database` holds `sqlite:///path` or `postgresql://user:pass@host/db`, whatever driver
suffix the user wrote; the gateway always talks through aiosqlite or asyncpg. A URL is only ever
shown in its `safe` form, with the password replaced by `***`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from lockgate.storage.errors import DatabaseUnavailable

__all__ = ["Backend", "DatabaseUrl", "hide_password", "parse_database_url"]

Backend = Literal["sqlite", "postgresql"]

DRIVERS: dict[Backend, str] = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}

LIBPQ_TO_ASYNCPG = {"sslmode": "ssl", "connect_timeout": "timeout"}
"""libpq query parameters people put in PostgreSQL URLs, renamed to asyncpg's connect arguments."""

CONNECT_TIMEOUT_S = 10.0
"""asyncpg waits 60 s by default; a CLI command against an unreachable host should not."""

_USERINFO = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


@dataclass(frozen=True)
class DatabaseUrl:
    url: URL
    """The URL with its async driver, as the engine is created from."""
    backend: Backend
    safe: str
    """The URL as given, password hidden: the only form to print or log."""
    connect_timeout_s: float | None = None
    """PostgreSQL only: how long connecting may take (`?connect_timeout=`, default 10 s)."""

    @property
    def sqlite_file(self) -> Path | None:
        """The database file of a file-backed SQLite URL (None for PostgreSQL or `:memory:`)."""
        database = self.url.database
        if self.backend != "sqlite" or not database or database == ":memory:":
            return None
        if database.startswith("file:"):
            return None  # a URI filename (`?uri=true`): SQLite resolves it
        return Path(database)


def hide_password(url: str) -> str:
    """`url` with its password replaced by `***`, even when it does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _USERINFO.sub(r"\1:***@", url)


def parse_database_url(url: str) -> DatabaseUrl:
    """Map `storage.database` to its async driver; `DatabaseUnavailable` when it is unusable."""
    safe = hide_password(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise DatabaseUnavailable(f"not a database URL: {safe}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return DatabaseUrl(parsed.set(drivername=DRIVERS["sqlite"]), "sqlite", safe)
    if backend == "postgresql":
        query = {LIBPQ_TO_ASYNCPG.get(name, name): value for name, value in parsed.query.items()}
        timeout = query.pop("timeout", None)
        try:
            timeout_s = CONNECT_TIMEOUT_S if timeout is None else float(str(timeout))
        except ValueError:
            raise DatabaseUnavailable(f"connect_timeout is not a number in {safe}") from None
        asyncpg_url = parsed.set(drivername=DRIVERS["postgresql"], query=query)
        return DatabaseUrl(asyncpg_url, "postgresql", safe, timeout_s)
    raise DatabaseUnavailable(f"unsupported database {safe}: expected sqlite:/// or postgresql://")
