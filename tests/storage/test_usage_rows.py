"""The ledger's own inserts store exactly what SQLAlchemy's column types would, on SQLite (where
NULLs are left out of the statement and bools go as 0 and 1) and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from lockgate.storage import Database
from lockgate.storage.engine import create_engine
from lockgate.storage.tables import UsageRow
from lockgate.storage.urls import parse_database_url
from lockgate.storage.usage import COLUMNS, Values, as_row, from_row, usage_values
from lockgate.storage.usage_sqlite import NULLABLE, ROWS_PER_STATEMENT
from lockgate.usage.record import UsageRecord
from tests.storage.raw import query

STARTED = datetime(2026, 3, 4, 5, 6, 7, 250_000, tzinfo=UTC)
"""A start whose fraction of a second floats hold exactly (the stored microseconds are exact)."""


def full(request_id: str) -> UsageRecord:
    """A streamed, tagged prompt request whose tokens were estimated: every nullable column has
    a value."""
    record = UsageRecord(
        request_id,
        "prompt",
        client_request_id=f"client-{request_id}",
        started_at=STARTED.timestamp(),
        started=100.0,
        key="k",
        team="t",
        subject="group/project:main",
        model="m",
        provider="p",
        target_model="tm",
        prompt="summarize",
        prompt_version="1.0.0",
        stream=True,
        tags={"env": "ci", "ünï": "cödé"},
        input_tokens=3,
        output_tokens=2,
        cached_tokens=1,
        estimated=True,
        cost_micros=12,
        attempts=2,
    )
    record.ready = 100.05
    record.ended = 100.25
    return record


def variants() -> list[Values]:
    """Rows with every nullable column missing in turn, none, and all of them, in one batch."""
    complete = as_row(usage_values(full("r-full")))
    rows = [from_row(complete)]
    for column in NULLABLE:
        rows.append(from_row({**complete, "request_id": f"r-no-{column}", column: None}))
    cached = {"cache_hit": True, "estimated": False, "stream": False, "ttft_ms": None}
    rows.append(from_row({**complete, "request_id": "r-cached", **cached}))
    bare = UsageRecord("r-bare", "chat", started_at=STARTED.timestamp(), started=100.0)
    bare.ended = 100.001
    rows.append(usage_values(bare))
    return rows


async def stored(url: str, request_ids: list[str]) -> list[dict[str, Any]]:
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as connection:
            table = UsageRow.__table__
            query = select(table).where(table.c.request_id.in_(request_ids))
            return [dict(row._mapping) for row in await connection.execute(query)]
    finally:
        await engine.dispose()


async def insert_through_sqlalchemy(url: str, rows: list[Values]) -> None:
    """The reference: the same rows through the column types' own conversions."""
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.begin() as connection:
            params = []
            for row in rows:
                values = as_row(row)
                values["created_at"] = datetime.fromtimestamp(values["created_at"], UTC)
                values["tags"] = values["tags"] or {}
                values["request_id"] = f"ref-{values['request_id']}"
                params.append(values)
            await connection.execute(insert(UsageRow.__table__), params)
    finally:
        await engine.dispose()


def decoded(tags: Any) -> Any:
    return json.loads(tags) if isinstance(tags, str) else tags


def test_the_nullable_columns_are_the_table_s() -> None:
    table = UsageRow.__table__
    assert tuple(column.name for column in table.columns if column.nullable) == NULLABLE


def test_the_columns_are_the_table_s_in_its_order() -> None:
    assert tuple(column.name for column in UsageRow.__table__.columns) == COLUMNS


async def test_rows_read_back_as_sqlalchemy_writes_them(db: Database, database_url: str) -> None:
    rows = variants()
    await db.usage.insert(rows)
    await insert_through_sqlalchemy(database_url, rows)
    ids = [row[0] for row in rows]
    ours = {row["request_id"]: row for row in await stored(database_url, ids)}
    theirs = {
        row["request_id"].removeprefix("ref-"): row
        for row in await stored(database_url, [f"ref-{id_}" for id_ in ids])
    }
    assert sorted(ours) == sorted(ids)
    for id_ in ids:
        assert {**ours[id_], "request_id": None} == {**theirs[id_], "request_id": None}, id_
    complete = ours["r-full"]
    assert complete["created_at"] == STARTED
    assert complete["tags"] == {"env": "ci", "ünï": "cödé"}
    assert (complete["stream"], complete["cache_hit"], complete["estimated"]) == (True, False, True)
    assert (ours["r-cached"]["cache_hit"], ours["r-cached"]["stream"]) == (True, False)
    assert complete["ttft_ms"] == 50.0
    assert ours["r-no-team"]["team"] is None
    assert ours["r-bare"]["tags"] == {}
    assert set(COLUMNS) == set(complete)
    # Below the column types too, each value has the same type (SQLite: 0/1, text, REAL, NULL);
    # only the JSON is spelled differently (compact, not ASCII-escaped).
    raw = {row[0]: row for row in await query(database_url, "SELECT * FROM usage")}
    for id_ in ids:
        mine, reference = (as_row(tuple(raw[name])) for name in (id_, f"ref-{id_}"))
        assert decoded(mine.pop("tags")) == decoded(reference.pop("tags"))
        del mine["request_id"], reference["request_id"]
        assert {k: (type(v), v) for k, v in mine.items()} == {
            k: (type(v), v) for k, v in reference.items()
        }, id_


async def test_a_batch_of_several_null_patterns_is_idempotent(
    db: Database, database_url: str
) -> None:
    rows = variants()
    await db.usage.insert(rows[:3])
    changed = [from_row({**as_row(row), "input_tokens": 999}) for row in rows]
    await db.usage.insert(changed)  # the first three are already stored: skipped
    by_id = {row["request_id"]: row for row in await stored(database_url, [r[0] for r in rows])}
    assert len(by_id) == len(rows)
    assert [by_id[row[0]]["input_tokens"] for row in rows[:3]] == [3, 3, 3]
    assert {by_id[row[0]]["input_tokens"] for row in rows[3:]} == {999}


async def test_batches_of_any_size_are_stored_row_for_row(db: Database, database_url: str) -> None:
    """Full multi-row statements, the rest one by one, and a request id twice in one statement
    (stored once: the first copy)."""
    template = as_row(usage_values(full("template")))
    count = 2 * ROWS_PER_STATEMENT + 3
    rows = [
        from_row({**template, "request_id": f"n{index:03}", "input_tokens": index})
        for index in range(count)
    ]
    rows.insert(5, from_row({**template, "request_id": "n001", "input_tokens": -1}))
    await db.usage.insert(rows)
    ids = [f"n{index:03}" for index in range(count)]
    by_id = {row["request_id"]: row["input_tokens"] for row in await stored(database_url, ids)}
    assert by_id == {f"n{index:03}": index for index in range(count)}
