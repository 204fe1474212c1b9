"""Migrations: an empty database gets every table, re-running changes nothing, and workers
starting at once (tasks or processes) migrate exactly once between them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command

from lockgate.storage import SCHEMA_HEAD, Database, DatabaseUnavailable, Migration, upgrade
from lockgate.storage.engine import create_engine
from lockgate.storage.migrate import alembic_config, head_revision
from lockgate.storage.urls import parse_database_url
from tests.conftest import free_port
from tests.storage.raw import key_hash, query, schema_of

TABLES = {"alembic_version", "api_keys", "prompt_versions", "revision", "spend", "teams", "usage"}
HEAD = "0003"


def test_the_schema_head_constant_names_the_newest_migration() -> None:
    """`Database.open` skips Alembic when the database is at `SCHEMA_HEAD`: a new migration
    must move it, or databases would never be upgraded."""
    assert head_revision() == SCHEMA_HEAD


def test_an_up_to_date_database_opens_without_loading_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/lockgate.db"
    # What `lockgate serve` runs before its workers start: the URL on stdin.
    migrated = subprocess.run(
        [sys.executable, "-m", "lockgate.storage.migrate"],
        input=url,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    script = (
        "import asyncio, sys\n"
        "from lockgate.storage import Database\n"
        "async def main():\n"
        f"    async with await Database.open({url!r}) as db:\n"
        "        print(db.migration.before, db.migration.after, 'alembic' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [HEAD, HEAD, "False"]


async def test_an_empty_database_gets_the_whole_schema(database_url: str) -> None:
    assert head_revision() == HEAD
    async with await Database.open(database_url) as db:
        assert db.migration == Migration(before=None, after=HEAD)
        assert db.migration.changed
        assert await db.current_revision() == 0
    tables, differences = await schema_of(database_url)
    assert tables == TABLES
    assert differences == []  # the migrations build exactly what tables.py declares


async def test_running_migrations_again_changes_nothing_and_keeps_data(database_url: str) -> None:
    assert await upgrade(database_url) == Migration(before=None, after=HEAD)
    async with await Database.open(database_url) as db:
        assert db.migration == Migration(before=HEAD, after=HEAD)
        assert not db.migration.changed
        await db.keys.create("kept", key_hash=key_hash(1), prefix="lg-kept")
    assert await upgrade(database_url) == Migration(before=HEAD, after=HEAD)
    async with await Database.open(database_url) as db:
        assert [key.name for key in await db.keys.list()] == ["kept"]
        assert await db.current_revision() == 1
    assert await query(database_url, "SELECT id, value FROM revision") == [(1, 1)]
    assert await query(database_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]


async def test_a_database_of_the_first_schema_is_upgraded_and_keeps_its_keys(
    database_url: str,
) -> None:
    engine = create_engine(parse_database_url(database_url))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0001"))
    finally:
        await engine.dispose()
    await query(
        database_url,
        "INSERT INTO teams (name, models, limits, metadata, created_at, updated_at) "
        "VALUES ('old', '[]', '{}', '{}', '2025-01-01 00:00:00', '2025-01-01 00:00:00')",
    )
    async with await Database.open(database_url) as db:
        assert db.migration == Migration(before="0001", after=HEAD)
        assert [team.name for team in await db.teams.list()] == ["old"]
    tables, differences = await schema_of(database_url)
    assert tables == TABLES
    assert differences == []


async def test_many_tasks_opening_at_once_migrate_once(database_url: str) -> None:
    databases = await asyncio.gather(*(Database.open(database_url) for _ in range(8)))
    try:
        migrations = [database.migration for database in databases]
        assert migrations.count(Migration(None, HEAD)) == 1
        assert migrations.count(Migration(HEAD, HEAD)) == 7
        await asyncio.gather(*(database.ping() for database in databases))
    finally:
        await asyncio.gather(*(database.close() for database in databases))
    assert await query(database_url, "SELECT id, value FROM revision") == [(1, 0)]


WORKER = """
import asyncio, sys
from lockgate.storage import Database

async def main() -> None:
    number = int(sys.argv[2])
    db = await Database.open(sys.argv[1])
    try:
        key_hash = "sha256:" + format(number, "064x")
        await db.keys.create(f"worker-{number}", key_hash=key_hash, prefix="lg-worker")
        await db.spend.add_spend([("team:shared", "2025-01", 1000), (f"key:{number}", "total", 7)])
        print("migrated" if db.migration.changed else "up to date")
    finally:
        await db.close()

asyncio.run(main())
"""


async def test_worker_processes_starting_at_once_share_one_database(database_url: str) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            database_url,
            str(number),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for number in range(8)
    ]
    outputs = await asyncio.gather(*(process.communicate() for process in processes))
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()
    said = sorted(stdout.decode().strip() for stdout, _ in outputs)
    assert said == ["migrated"] + ["up to date"] * 7
    async with await Database.open(database_url) as db:
        assert len(await db.keys.list()) == 8
        assert await db.spend.get_spend("team:shared", "2025-01") == 8000
        assert await db.current_revision() == 8


async def test_a_schema_newer_than_this_lockgate_is_refused_clearly(database_url: str) -> None:
    await upgrade(database_url)
    await query(database_url, "UPDATE alembic_version SET version_num = '0999'")
    with pytest.raises(
        DatabaseUnavailable, match=r"cannot migrate database .*'0999'.*newer version"
    ):
        await Database.open(database_url)


async def test_one_process_migrates_several_databases_at_once(
    sqlite_url: str, postgres_url: str, tmp_path: Path
) -> None:
    # Alembic's running migration is process-global: migrations of different databases, which
    # no database lock keeps apart, must still take turns.
    urls = [sqlite_url, postgres_url, f"sqlite:///{tmp_path / 'second.db'}"]
    databases = await asyncio.gather(*(Database.open(url) for url in urls for _ in range(3)))
    try:
        for number, url in enumerate(urls):
            migrations = [database.migration for database in databases[number * 3 : number * 3 + 3]]
            assert migrations.count(Migration(None, HEAD)) == 1, url
            assert migrations.count(Migration(HEAD, HEAD)) == 2, url
    finally:
        await asyncio.gather(*(database.close() for database in databases))
    for url in urls:
        _, differences = await schema_of(url)
        assert differences == []


def test_the_migrate_child_fails_quietly_on_an_unreachable_database() -> None:
    """`lockgate serve` goes on; the worker's own attempt reports the problem."""
    result = subprocess.run(
        [sys.executable, "-m", "lockgate.storage.migrate"],
        input=f"postgresql://lockgate:s3cret@127.0.0.1:{free_port()}/none",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "s3cret" not in result.stdout + result.stderr
