"""Config URLs map to the async drivers, and are only ever shown without their password."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lockgate.storage import DatabaseUnavailable, hide_password
from lockgate.storage.urls import parse_database_url


@pytest.mark.parametrize(
    ("given", "database", "file"),
    [
        ("sqlite:///./lockgate.db", "./lockgate.db", "lockgate.db"),
        ("sqlite:///data/gw.db", "data/gw.db", "data/gw.db"),
        ("sqlite:////var/lib/gw.db", "/var/lib/gw.db", "/var/lib/gw.db"),
        ("sqlite+pysqlite:///x.db", "x.db", "x.db"),
        ("sqlite:///:memory:", ":memory:", None),
    ],
)
def test_sqlite_urls_use_aiosqlite(given: str, database: str, file: str | None) -> None:
    target = parse_database_url(given)
    assert target.backend == "sqlite"
    assert (target.url.drivername, target.url.database) == ("sqlite+aiosqlite", database)
    assert target.sqlite_file == (None if file is None else Path(file))


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://gw:s3cret@db.internal:5433/lockgate",
        "postgresql+psycopg://gw:s3cret@db.internal:5433/lockgate",
        "postgresql+asyncpg://gw:s3cret@db.internal:5433/lockgate",
    ],
)
def test_postgresql_urls_use_asyncpg(given: str) -> None:
    target = parse_database_url(given)
    assert target.backend == "postgresql"
    assert target.url.drivername == "postgresql+asyncpg"
    assert (target.url.host, target.url.port, target.url.database) == (
        "db.internal",
        5433,
        "lockgate",
    )
    assert target.url.password == "s3cret"
    assert target.connect_timeout_s == 10.0
    assert target.safe.endswith("://gw:***@db.internal:5433/lockgate")
    assert target.sqlite_file is None


def test_quoted_credentials_ipv6_hosts_and_query_parameters_are_read() -> None:
    target = parse_database_url("postgresql://g%40w:p%2Fss%3Aw@[::1]:6543/lg?ssl=require")
    assert (target.username, target.password) == ("g@w", "p/ss:w")
    assert (target.host, target.port, target.database) == ("::1", 6543, "lg")
    assert target.query == {"ssl": "require"}
    assert target.safe == "postgresql://g%40w:***@[::1]:6543/lg?ssl=require"
    engine_url = target.url
    assert (engine_url.username, engine_url.password, engine_url.host) == ("g@w", "p/ss:w", "::1")


def test_the_database_part_is_percent_decoded_and_blank_parameters_dropped() -> None:
    target = parse_database_url("sqlite:///my%20db.sqlite")
    assert target.sqlite_file == Path("my db.sqlite")
    postgres = parse_database_url("postgresql://gw@db/my%2Ddb?sslmode=")
    assert postgres.database == "my-db"
    assert postgres.query == {}


def test_libpq_parameters_become_asyncpg_ones() -> None:
    target = parse_database_url("postgresql://gw@db/lockgate?sslmode=require&connect_timeout=3")
    assert dict(target.url.query) == {"ssl": "require"}
    assert target.connect_timeout_s == 3.0


def test_passwords_are_hidden_even_in_urls_that_do_not_parse() -> None:
    assert hide_password("postgresql://gw:hunter2@db/x") == "postgresql://gw:***@db/x"
    assert "hunter2" not in hide_password("postgresql://gw:hunter2@db:notaport/x")
    assert hide_password("sqlite:///./lockgate.db") == "sqlite:///./lockgate.db"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("mysql://gw:hunter2@db/x", "unsupported database mysql://gw:***@db/x"),
        ("postgresql://gw:hunter2@db:notaport/x", "not a database URL"),
        ("postgresql://gw:hunter2@db:70000/x", "not a database URL"),
        ("postgresql://gw:hunter2@db/x?connect_timeout=soon", "connect_timeout is not a number"),
    ],
)
def test_unusable_urls_are_refused_without_the_password(given: str, message: str) -> None:
    with pytest.raises(DatabaseUnavailable, match=re.escape(message)) as caught:
        parse_database_url(given)
    assert "hunter2" not in str(caught.value)
