"""Database URLs: the config's form mapped to an async driver, and rendered without the password.

`storage.database` holds `sqlite:///path` or `postgresql://user:pass@host/db`, whatever driver
suffix the user wrote; the gateway always talks through aiosqlite or asyncpg. A URL is only ever
shown in its `safe` form, with the password replaced by `***`.

Parsed here rather than by SQLAlchemy's `make_url` (the same grammar, and user name, password
and database percent-decoded the same way): a serving worker talks to the drivers directly, and
importing SQLAlchemy to read a URL would cost it some 12 MB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, unquote

from lockgate.storage.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["Backend", "DatabaseUrl", "hide_password", "parse_database_url"]

Backend = Literal["sqlite", "postgresql"]

DRIVERS: dict[Backend, str] = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}

LIBPQ_TO_ASYNCPG = {"sslmode": "ssl", "connect_timeout": "timeout"}
"""libpq query parameters people put in PostgreSQL URLs, renamed to asyncpg's connect arguments."""

CONNECT_TIMEOUT_S = 10.0
"""asyncpg waits 60 s by default; a CLI command against an unreachable host should not."""

_URL = re.compile(
    r"""
    (?P<scheme>[\w+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:\[(?P<ipv6host>[^/?]+)\]|(?P<host>[^/:?]+))?
    (?::(?P<port>[^/?]*))?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?
    """,
    re.VERBOSE | re.DOTALL,
)
"""scheme://user:password@host:port/database?query, every part after the scheme optional."""

_USERINFO = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


@dataclass(frozen=True)
class DatabaseUrl:
    backend: Backend
    safe: str
    """The URL as given, password hidden: the only form to print or log."""
    database: str | None
    """SQLite: the file (or a `file:` URI with `?uri=true`); PostgreSQL: the database name."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    query: dict[str, str] = field(default_factory=dict)
    """The URL's query parameters (PostgreSQL: renamed to asyncpg's, without `timeout`)."""
    connect_timeout_s: float | None = None
    """PostgreSQL only: how long connecting may take (`?connect_timeout=`, default 10 s)."""

    @property
    def url(self) -> URL:
        """The URL with its async driver, as SQLAlchemy's engine is created from (imports it)."""
        from sqlalchemy.engine import URL

        return URL.create(
            DRIVERS[self.backend],
            self.username,
            self.password,
            self.host,
            self.port,
            self.database,
            self.query,
        )

    @property
    def sqlite_file(self) -> Path | None:
        """The database file of a file-backed SQLite URL (None for PostgreSQL or `:memory:`)."""
        database = self.database
        if self.backend != "sqlite" or not database or database == ":memory:":
            return None
        if database.startswith("file:"):
            return None  # a URI filename (`?uri=true`): SQLite resolves it
        return Path(database)


def hide_password(url: str) -> str:
    """`url` with its password replaced by `***`, even when it does not parse."""
    match = _URL.fullmatch(url)
    if match is None or match["password"] is None:
        return _USERINFO.sub(r"\1:***@", url)
    start, end = match.span("password")
    return f"{url[:start]}***{url[end:]}"


def parse_database_url(url: str) -> DatabaseUrl:
    """Map `storage.database` to its async driver; `DatabaseUnavailable` when it is unusable."""
    safe = hide_password(url)
    match = _URL.fullmatch(url)
    port = match["port"] if match else None
    if match is None or (port and not (port.isdigit() and int(port) <= 65535)):
        raise DatabaseUnavailable(f"not a database URL: {safe}")
    backend = match["scheme"].split("+")[0]
    query = dict(parse_qsl(match["query"] or ""))
    database = _unquoted(match["database"])
    if backend == "sqlite":
        return DatabaseUrl("sqlite", safe, database, query=query)
    if backend == "postgresql":
        query = {LIBPQ_TO_ASYNCPG.get(name, name): value for name, value in query.items()}
        timeout = query.pop("timeout", None)
        try:
            timeout_s = CONNECT_TIMEOUT_S if timeout is None else float(timeout)
        except ValueError:
            raise DatabaseUnavailable(f"connect_timeout is not a number in {safe}") from None
        return DatabaseUrl(
            "postgresql",
            safe,
            database or None,
            username=_unquoted(match["username"]),
            password=_unquoted(match["password"]),
            host=match["ipv6host"] or match["host"],
            port=int(port) if port else None,
            query=query,
            connect_timeout_s=timeout_s,
        )
    raise DatabaseUnavailable(f"unsupported database {safe}: expected sqlite:/// or postgresql://")


def _unquoted(part: str | None) -> str | None:
    return None if part is None else unquote(part)
