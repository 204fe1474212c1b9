"""Usage reports over the ledger, on SQLite and PostgreSQL: every grouping's numbers, time
windows, UTC day buckets and filters.

`ledger()` is the shared ledger of these tests and of the CLI and admin API report tests.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from lockgate.storage import Database
from lockgate.storage.usage import as_row, from_row, usage_values
from lockgate.storage.usage_report import (
    GROUPINGS,
    UsageSummary,
    parse_since,
    total,
)
from lockgate.usage.record import UsageRecord

NUMBERS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "estimated",
    "cache_hits",
    "avg_latency_ms",
    "max_latency_ms",
    "avg_ttft_ms",
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def record(
    request_id: str,
    when: str,
    *,
    latency_ms: float,
    ttft_ms: float | None = None,
    status: int = 200,
    **fields: Any,
) -> UsageRecord:
    """A finished request at `when` (UTC) that took `latency_ms` (`ttft_ms`: a stream's)."""
    entry = UsageRecord(
        request_id=request_id,
        endpoint="chat",
        started_at=at(when).timestamp(),
        started=1000.0,
        stream=ttft_ms is not None,
        **fields,
    )
    if status != 200:
        entry.fail(status, "rate_limit_exceeded")
    entry.ready = None if ttft_ms is None else 1000.0 + ttft_ms / 1000
    entry.ended = 1000.0 + latency_ms / 1000
    return entry


def ledger() -> list[dict[str, Any]]:
    """Five requests over three UTC days (two a minute either side of midnight)."""
    records = [
        record(
            "r1",
            "2025-03-10T10:00:00",
            key="alice",
            team="t1",
            model="m1",
            provider="p1",
            input_tokens=100,
            output_tokens=50,
            cached_tokens=10,
            cost_micros=1000,
            latency_ms=200,
            ttft_ms=50,
        ),
        record(
            "r2",
            "2025-03-10T23:59:30",
            key="alice",
            team="t1",
            model="m2",
            provider="p2",
            input_tokens=200,
            output_tokens=100,
            estimated=True,
            cost_micros=3000,
            latency_ms=400,
        ),
        record(
            "r3",
            "2025-03-11T00:00:30",
            key="bob",
            team="t2",
            model="m1",
            provider="p1",
            input_tokens=10,
            latency_ms=10,
            status=429,
        ),
        record(
            "r4",
            "2025-03-11T12:00:00",
            subject="group/project:main",
            team="t2",
            model="m1",
            provider="p1",
            prompt="summarize",
            prompt_version="1.0.0",
            input_tokens=300,
            output_tokens=30,
            cost_micros=500,
            cache_hit=True,
            latency_ms=100,
        ),
        record(
            "r5",
            "2025-03-12T08:00:00",
            key="bob",
            team="t2",
            model="m1",
            provider="p1",
            prompt="summarize",
            prompt_version="1.1.0",
            input_tokens=50,
            output_tokens=20,
            cost_micros=700,
            latency_ms=300,
            ttft_ms=150,
        ),
    ]
    return [usage_values(entry) for entry in records]


def numbers(
    requests: int,
    errors: int,
    tokens: tuple[int, int, int],
    cost_micros: int,
    estimated: int,
    cache_hits: int,
    latency: tuple[float, float],
    ttft: float | None,
) -> tuple[Any, ...]:
    return (
        requests,
        errors,
        *tokens,
        cost_micros / 1_000_000,
        estimated,
        cache_hits,
        *latency,
        ttft,
    )


T1 = numbers(2, 0, (300, 150, 10), 4000, 1, 0, (300, 400), 50)
T2 = numbers(3, 1, (360, 50, 0), 1200, 0, 1, (136.667, 300), 150)
EVERYTHING = numbers(5, 1, (660, 200, 10), 5200, 1, 1, (202, 400), 100)

EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "team": [(("t1",), T1), (("t2",), T2)],
    "key": [
        (("alice",), T1),
        (("bob",), numbers(2, 1, (60, 20, 0), 700, 0, 0, (155, 300), 150)),
        ((None,), numbers(1, 0, (300, 30, 0), 500, 0, 1, (100, 100), None)),
    ],
    "model": [
        (("m2",), numbers(1, 0, (200, 100, 0), 3000, 1, 0, (400, 400), None)),
        (("m1",), numbers(4, 1, (460, 100, 10), 2200, 0, 1, (152.5, 300), 100)),
    ],
    "provider": [
        (("p2",), numbers(1, 0, (200, 100, 0), 3000, 1, 0, (400, 400), None)),
        (("p1",), numbers(4, 1, (460, 100, 10), 2200, 0, 1, (152.5, 300), 100)),
    ],
    "prompt": [
        ((None, None), numbers(3, 1, (310, 150, 10), 4000, 1, 0, (203.333, 400), 50)),
        (("summarize", "1.1.0"), numbers(1, 0, (50, 20, 0), 700, 0, 0, (300, 300), 150)),
        (("summarize", "1.0.0"), numbers(1, 0, (300, 30, 0), 500, 0, 1, (100, 100), None)),
    ],
    "day": [
        (("2025-03-10",), T1),
        (("2025-03-11",), numbers(2, 1, (310, 30, 0), 500, 0, 1, (55, 100), None)),
        (("2025-03-12",), numbers(1, 0, (50, 20, 0), 700, 0, 0, (300, 300), 150)),
    ],
}


def flat(summary: UsageSummary, by: Any = None) -> tuple[Any, ...]:
    values = summary.as_dict(by)
    return tuple(values[name] for name in NUMBERS)


def report(rows: list[UsageSummary], by: Any) -> list[tuple[Any, ...]]:
    return [(row.group, flat(row, by)) for row in rows]


@pytest.fixture
async def filled(db: Database) -> Database:
    await db.usage.insert(ledger())
    return db


@pytest.mark.parametrize("by", GROUPINGS)
async def test_every_grouping_sums_its_groups(filled: Database, by: Any) -> None:
    rows = await filled.usage_report.summarize(by, None)
    assert report(rows, by) == EXPECTED[by]
    assert flat(total(rows)) == EVERYTHING


async def test_a_summary_names_its_group_values(filled: Database) -> None:
    (first, *_) = await filled.usage_report.summarize("prompt", None)
    assert first.as_dict("prompt") == {
        "prompt": None,
        "prompt_version": None,
        "requests": 3,
        "errors": 1,
        "input_tokens": 310,
        "output_tokens": 150,
        "cached_tokens": 10,
        "cost_usd": 0.004,
        "estimated": 1,
        "cache_hits": 0,
        "avg_latency_ms": 203.333,
        "max_latency_ms": 400.0,
        "avg_ttft_ms": 50.0,
    }
    assert first.cost_usd_micros == 4000
    assert first.ttft_count == 1
    assert "team" not in total([first]).as_dict()


async def test_since_is_inclusive_and_until_exclusive(filled: Database) -> None:
    since, until = at("2025-03-11T00:00:30"), at("2025-03-12T08:00:00")
    rows = await filled.usage_report.summarize("day", since, until)
    assert [(row.group, row.requests) for row in rows] == [(("2025-03-11",), 2)]
    rows = await filled.usage_report.summarize("team", since)
    assert [(row.group, row.requests) for row in rows] == [(("t2",), 3)]
    rows = await filled.usage_report.summarize("team", None, at("2025-03-10T10:00:00.000001"))
    assert [(row.group, row.requests) for row in rows] == [(("t1",), 1)]
    # A time in another zone is the same instant.
    east = since.astimezone(timezone(timedelta(hours=5)))
    assert await filled.usage_report.summarize(
        "day", east, until
    ) == await filled.usage_report.summarize("day", since, until)
    assert await filled.usage_report.summarize("model", at("2025-04-01T00:00:00")) == []


async def test_day_buckets_split_at_midnight_utc(filled: Database) -> None:
    rows = await filled.usage_report.summarize(
        "day", at("2025-03-10T23:00:00"), at("2025-03-11T01:00:00")
    )
    assert [(row.group, row.requests, row.cost_usd_micros) for row in rows] == [
        (("2025-03-10",), 1, 3000),
        (("2025-03-11",), 1, 0),
    ]


async def test_filters_narrow_the_requests(filled: Database) -> None:
    rows = await filled.usage_report.summarize("model", None, team="t2")
    assert [(row.group, row.requests, row.cost_usd_micros) for row in rows] == [(("m1",), 3, 1200)]
    rows = await filled.usage_report.summarize("day", None, key="alice")
    assert [(row.group, row.requests) for row in rows] == [(("2025-03-10",), 2)]
    rows = await filled.usage_report.summarize("team", None, model="m1", key="bob")
    assert [(row.group, row.requests, row.errors) for row in rows] == [(("t2",), 2, 1)]
    assert await filled.usage_report.summarize("team", None, team="nobody") == []


async def test_a_replayed_request_id_is_counted_once(filled: Database) -> None:
    replay = ledger()[:2]
    replay[0] = from_row({**as_row(replay[0]), "cost_usd_micros": 999_999, "input_tokens": 1})
    await filled.usage.insert(replay)
    await filled.usage.insert(ledger())
    rows = await filled.usage_report.summarize("team", None)
    assert report(rows, "team") == EXPECTED["team"]


async def test_an_empty_ledger_reports_nothing(db: Database) -> None:
    assert await db.usage_report.summarize("day", None) == []
    assert flat(total([])) == numbers(0, 0, (0, 0, 0), 0, 0, 0, (0, 0), None)


async def test_an_unknown_grouping_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="cannot group usage by 'bogus': expected one of key,"):
        await db.usage_report.summarize("bogus")  # type: ignore[arg-type]


async def test_days_are_utc_whatever_the_postgres_time_zone(postgres_url: str) -> None:
    name = make_url(postgres_url).database
    assert name is not None
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("ALTER DATABASE {} SET timezone TO 'Pacific/Kiritimati'").format(
                sql.Identifier(name)
            )
        )
    async with await Database.open(postgres_url) as db:
        await db.usage.insert(ledger())
        rows = await db.usage_report.summarize("day", None)
    assert [row.group for row in rows] == [("2025-03-10",), ("2025-03-11",), ("2025-03-12",)]


NOW = datetime(2025, 3, 12, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("24h", NOW - timedelta(hours=24)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2)),
        (" 45s ", NOW - timedelta(seconds=45)),
        ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31T12:00:00", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31T12:00:00Z", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31T12:00:00+02:00", datetime(2025, 1, 31, 10, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    parsed = parse_since(text, NOW)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text", ["", "7", "7x", "d7", "-7d", "yesterday", "2025-13-01", "99999999d"]
)
def test_parse_since_names_what_it_expected(text: str) -> None:
    message = f"expected a duration like 30m, 24h, 7d or 2w, or a date or time like 2025-01-31 or 2025-01-31T12:00:00Z; got {text!r}"
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_since(text, NOW)
    assert str(caught.value) == message
