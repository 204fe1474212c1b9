"""Opening, pinging and closing; clear errors without passwords; SQLite shared by processes;
the change counter workers poll."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from lockgate.storage import Database, DatabaseUnavailable
from tests.conftest import free_port
from tests.storage.raw import key_hash


async def test_ping_answers(database_url: str, db: Database) -> None:
    await db.ping()
    assert db.backend == make_url(database_url).get_backend_name()


async def test_the_url_is_only_shown_without_its_password(postgres_url: str) -> None:
    # The test server trusts local connections, so any password is accepted.
    url = make_url(postgres_url).set(password="hunter2-secret")
    async with await Database.open(url.render_as_string(hide_password=False)) as db:
        await db.ping()
        assert db.url == url.render_as_string(hide_password=True)
        assert ":***@" in db.url
        assert "hunter2" not in db.url


async def test_unreachable_postgres_is_one_clear_line_without_the_password() -> None:
    port = free_port()
    url = f"postgresql://gateway:hunter2-secret@127.0.0.1:{port}/lockgate"
    with pytest.raises(DatabaseUnavailable) as caught:
        await Database.open(url)
    message = str(caught.value)
    assert message.startswith(
        f"cannot open database postgresql://gateway:***@127.0.0.1:{port}/lockgate: "
    )
    assert "hunter2" not in message
    assert "\n" not in message


async def test_a_missing_postgres_database_is_named(postgres_server_url: str) -> None:
    url = make_url(postgres_server_url).set(database="lockgate_no_such_db")
    with pytest.raises(DatabaseUnavailable, match='database "lockgate_no_such_db" does not exist'):
        await Database.open(url.render_as_string(hide_password=False))


async def test_ping_fails_clearly_once_postgres_is_gone(
    postgres_url: str, postgres_server_url: str
) -> None:
    async with await Database.open(postgres_url) as db:
        await db.ping()
        name = make_url(postgres_url).database
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        with pytest.raises(DatabaseUnavailable, match=r"^database postgresql://.* failed: "):
            await db.ping()


async def test_a_sqlite_file_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatabaseUnavailable, match=f"directory {missing} does not exist"):
        await Database.open(f"sqlite:///{missing}/lockgate.db")
    assert not missing.exists()


async def test_a_relative_sqlite_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with await Database.open("sqlite:///./state.db") as db:
        await db.ping()
    assert (tmp_path / "state.db").is_file()


async def test_sqlite_uses_wal_and_waits_for_another_writer(sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    async with await Database.open(sqlite_url) as db:
        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        locked, release = threading.Event(), threading.Event()

        def hold_write_lock() -> None:
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            release.wait(10)
            other.execute("COMMIT")
            other.close()

        holder = threading.Thread(target=hold_write_lock)
        holder.start()
        try:
            assert locked.wait(5)
            asyncio.get_running_loop().call_later(0.5, release.set)
            started = time.monotonic()
            # Another process holds the write lock: the write waits instead of failing.
            await db.keys.create("patient", key_hash=key_hash(1), prefix="lg-wait")
            assert time.monotonic() - started >= 0.4
        finally:
            release.set()
            holder.join()
        assert (await db.keys.get("patient")) is not None


async def test_reads_survive_postgres_closing_the_pooled_connections(
    postgres_url: str, postgres_server_url: str
) -> None:
    async with await Database.open(postgres_url) as db:
        await db.ping()
        name = make_url(postgres_url).database
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
        assert ended
        assert all(row[0] for row in ended)
        await db.ping()
        assert await db.current_revision() == 0


async def test_an_in_memory_sqlite_database_is_refused_with_what_to_use() -> None:
    with pytest.raises(DatabaseUnavailable, match=r"in-memory SQLite .* give a file"):
        await Database.open("sqlite:///:memory:")


async def test_the_directory_holds_active_keys_and_every_team(db: Database) -> None:
    await db.teams.create("platform", models=["gpt-*"])
    kept = await db.keys.create("kept", key_hash=key_hash(1), prefix="lg-kept", team="platform")
    await db.keys.create("gone", key_hash=key_hash(2), prefix="lg-gone")
    await db.keys.revoke("gone")
    keys, teams = await db.directory()
    assert keys == [kept]
    assert teams == await db.teams.list()
    assert [team.models for team in teams] == [("gpt-*",)]


async def test_workers_see_the_change_counter_move(database_url: str, db: Database) -> None:
    async with await Database.open(database_url) as worker:
        assert await worker.current_revision() == 0
        await db.keys.create("first", key_hash=key_hash(1), prefix="lg-first")
        assert await worker.current_revision() == 1
        await db.teams.create("platform")
        assert await worker.current_revision() == 2
        assert await db.bump_revision() == 3
        assert await worker.current_revision() == 3
