"""Prompt versions that served traffic, on SQLite and PostgreSQL: the first hash recorded wins,
repeated and concurrent recording never fails, and migration 0003 keeps the data it finds."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.engine import Connection

from lockgate.storage import Database, InvalidRecord, Migration
from lockgate.storage.engine import create_engine
from lockgate.storage.migrate import alembic_config, head_revision
from lockgate.storage.tables import PromptVersionRow
from lockgate.storage.urls import parse_database_url
from tests.storage.raw import query, schema_of


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_nothing_served_reads_as_empty(db: Database) -> None:
    assert await db.prompt_versions.served_hashes() == {}
    await db.prompt_versions.record_served([])
    assert await db.prompt_versions.served_hashes() == {}


async def _first_served(url: str) -> dict[tuple[str, str], datetime]:
    """`first_served_at` of each stored version, read through the table's column types."""
    row = PromptVersionRow
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as connection:
            result = await connection.execute(select(row.name, row.version, row.first_served_at))
            return {(name, version): at for name, version, at in result}
    finally:
        await engine.dispose()


async def test_the_first_hash_of_a_version_wins(database_url: str, db: Database) -> None:
    before = datetime.now(UTC)
    await db.prompt_versions.record_served(
        [("sentiment", "1.0.0", sha("v1")), ("sentiment", "1.1.0", sha("v1.1"))]
    )
    first = await _first_served(database_url)
    # The file of 1.0.0 changed: its new hash is not recorded, nor its time moved.
    await db.prompt_versions.record_served(
        [("sentiment", "1.0.0", sha("edited")), ("summary", "0.1.0", sha("s"))]
    )
    assert await db.prompt_versions.served_hashes() == {
        ("sentiment", "1.0.0"): sha("v1"),
        ("sentiment", "1.1.0"): sha("v1.1"),
        ("summary", "0.1.0"): sha("s"),
    }
    times = await _first_served(database_url)
    assert times[("sentiment", "1.0.0")] == first[("sentiment", "1.0.0")]
    assert times[("summary", "0.1.0")] >= first[("sentiment", "1.0.0")]
    assert all(at.tzinfo is UTC and before <= at <= datetime.now(UTC) for at in times.values())
    async with await Database.open(database_url) as reopened:
        stored = await reopened.prompt_versions.served_hashes()
    assert stored[("sentiment", "1.0.0")] == sha("v1")


async def test_within_one_batch_the_first_entry_wins(db: Database) -> None:
    await db.prompt_versions.record_served(
        [("a", "1.0.0", sha("one")), ("a", "1.0.0", sha("two")), ("b", "1.0.0", sha("b"))]
    )
    assert await db.prompt_versions.served_hashes() == {
        ("a", "1.0.0"): sha("one"),
        ("b", "1.0.0"): sha("b"),
    }


async def test_recording_again_changes_nothing(db: Database) -> None:
    batch = [("sentiment", "1.0.0", sha("v1")), ("triage", "2.0.0", sha("t"))]
    for _ in range(3):
        await db.prompt_versions.record_served(batch)
    assert await db.prompt_versions.served_hashes() == {
        ("sentiment", "1.0.0"): sha("v1"),
        ("triage", "2.0.0"): sha("t"),
    }
    # Upper-case hex is the same hash.
    await db.prompt_versions.record_served([("upper", "1.0.0", sha("u").upper())])
    assert (await db.prompt_versions.served_hashes())[("upper", "1.0.0")] == sha("u")


async def test_concurrent_recording_keeps_one_hash_per_version(
    database_url: str, db: Database
) -> None:
    async with await Database.open(database_url) as other:
        # 40 batches from two engines (two workers), sharing versions, each in its own order.
        batches = [
            [
                ("shared", "1.0.0", sha(f"shared-{number}")),
                (f"prompt-{number % 4}", "1.0.0", sha(f"p-{number}")),
                ("shared", f"2.{number % 3}.0", sha(f"minor-{number}")),
            ][:: 1 if number % 2 else -1]
            for number in range(40)
        ]
        await asyncio.gather(
            *(
                (db if number % 2 else other).prompt_versions.record_served(batch)
                for number, batch in enumerate(batches)
            )
        )
        seen_by_other = await other.prompt_versions.served_hashes()
    hashes = await db.prompt_versions.served_hashes()
    assert hashes == seen_by_other
    minors = {("shared", f"2.{minor}.0") for minor in range(3)}
    prompts = {(f"prompt-{key}", "1.0.0") for key in range(4)}
    assert set(hashes) == {("shared", "1.0.0")} | minors | prompts
    assert hashes[("shared", "1.0.0")] in {sha(f"shared-{number}") for number in range(40)}
    for key in range(4):
        offered = {sha(f"p-{number}") for number in range(40) if number % 4 == key}
        assert hashes[(f"prompt-{key}", "1.0.0")] in offered
    rows = await query(database_url, "SELECT COUNT(*) FROM prompt_versions")
    assert rows[0][0] == 8


@pytest.mark.parametrize(
    "entry",
    [
        ("sentiment", "1.0.0", "not-a-hash"),
        ("sentiment", "1.0.0", sha("x")[:63]),
        ("sentiment", "1.0.0", sha("x") + "0"),
        ("x" * 129, "1.0.0", sha("x")),
        ("sentiment", "1" * 65, sha("x")),
        ("", "1.0.0", sha("x")),
    ],
)
async def test_an_invalid_entry_writes_nothing(db: Database, entry: tuple[str, str, str]) -> None:
    with pytest.raises(InvalidRecord):
        await db.prompt_versions.record_served([("valid", "1.0.0", sha("v")), entry])
    assert await db.prompt_versions.served_hashes() == {}


async def _migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    def run(connection: Connection) -> None:
        move = command.downgrade if down else command.upgrade
        move(alembic_config(connection), revision)

    engine = create_engine(parse_database_url(url))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


USAGE_ROW = (
    "INSERT INTO usage (request_id, created_at, endpoint, prompt, prompt_version, status, "
    "input_tokens, output_tokens, cached_tokens, estimated, cost_usd_micros, latency_ms, "
    "cache_hit, attempts, stream, tags) VALUES ('req-{n}', '2026-01-0{n} 12:00:00', 'chat', "
    "'sentiment', '1.0.0', 200, {n}, 5, 0, FALSE, 120, 42.5, FALSE, 1, TRUE, '{{}}')"
)


async def test_a_database_at_0002_is_upgraded_and_keeps_its_usage(database_url: str) -> None:
    await _migrate_to(database_url, "0002")
    for number in (1, 2):
        await query(database_url, USAGE_ROW.format(n=number))
    async with await Database.open(database_url) as db:
        assert db.migration == Migration(before="0002", after=head_revision())
        await db.prompt_versions.record_served([("sentiment", "1.0.0", sha("v1"))])
        assert await db.prompt_versions.served_hashes() == {("sentiment", "1.0.0"): sha("v1")}
    rows = await query(
        database_url, "SELECT request_id, input_tokens, prompt_version FROM usage ORDER BY 1"
    )
    assert [tuple(row) for row in rows] == [("req-1", 1, "1.0.0"), ("req-2", 2, "1.0.0")]
    tables, differences = await schema_of(database_url)
    assert "prompt_versions" in tables
    assert differences == []  # 0003 builds exactly what tables.py declares


async def test_downgrading_0003_drops_only_its_table(database_url: str) -> None:
    async with await Database.open(database_url) as db:
        await db.prompt_versions.record_served([("sentiment", "1.0.0", sha("v1"))])
    await query(database_url, USAGE_ROW.format(n=1))
    await _migrate_to(database_url, "0002", down=True)
    tables, _ = await schema_of(database_url)
    assert "prompt_versions" not in tables
    assert "usage" in tables
    assert await query(database_url, "SELECT version_num FROM alembic_version") == [("0002",)]
    assert len(await query(database_url, "SELECT request_id FROM usage")) == 1
    # And back up again: an empty table, the usage row still there.
    async with await Database.open(database_url) as db:
        assert db.migration == Migration(before="0002", after=head_revision())
        assert await db.prompt_versions.served_hashes() == {}
    assert len(await query(database_url, "SELECT request_id FROM usage")) == 1
