"""Spend sums, on SQLite and PostgreSQL: exact under concurrency, batched in one transaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from lockgate.storage import Database, SpendRecord


async def test_nothing_recorded_reads_as_zero(db: Database) -> None:
    assert await db.spend.get_spend("key:nobody", "2025-01") == 0
    assert await db.spend.list_spend() == []
    await db.spend.add_spend([])
    assert await db.spend.list_spend() == []


async def test_amounts_add_up_per_scope_and_period(db: Database) -> None:
    await db.spend.add_spend([("key:a", "2025-01", 1500), ("team:x", "2025-01", 20)])
    await db.spend.add_spend([("key:a", "2025-01", 500), ("key:a", "2025-02", 3)])
    # The same row twice in a batch, a refund, and a zero that writes nothing.
    await db.spend.add_spend(
        [("team:x", "2025-01", 5), ("team:x", "2025-01", 5), ("key:a", "2025-02", -1)]
    )
    await db.spend.add_spend([("key:zero", "total", 0)])
    assert await db.spend.get_spend("key:a", "2025-01") == 2000
    assert await db.spend.get_spend("key:a", "2025-02") == 2
    assert await db.spend.get_spend("team:x", "2025-01") == 30
    assert await db.spend.get_spend("key:zero", "total") == 0


async def test_large_amounts_are_exact(db: Database) -> None:
    big = 9_000_000_000_000  # $9M in micro-dollars: beyond a 32-bit integer
    await db.spend.add_spend([("team:rich", "total", big), ("team:rich", "total", 1)])
    assert await db.spend.get_spend("team:rich", "total") == big + 1


async def test_list_is_ordered_by_scope_then_period(db: Database) -> None:
    before = datetime.now(UTC)
    await db.spend.add_spend(
        [
            ("team:b", "2025-01", 1),
            ("key:a", "2025-02", 2),
            ("team:b", "2024-12", 3),
            ("key:a", "2025-01", 4),
        ]
    )
    rows = await db.spend.list_spend()
    assert [(row.scope, row.period, row.usd_micros) for row in rows] == [
        ("key:a", "2025-01", 4),
        ("key:a", "2025-02", 2),
        ("team:b", "2024-12", 3),
        ("team:b", "2025-01", 1),
    ]
    assert all(isinstance(row, SpendRecord) for row in rows)
    assert all(row.updated_at.tzinfo is UTC and row.updated_at >= before for row in rows)


async def test_list_filters_by_scope_prefix_literally(db: Database) -> None:
    await db.spend.add_spend(
        [
            ("team:a_b", "2025-01", 1),
            ("team:aXb", "2025-01", 2),
            ("team:a_b", "2024-12", 3),
            ("key:a_b", "2025-01", 4),
            ("team:100%", "total", 5),
            ("team:1000", "total", 6),
        ]
    )

    async def amounts(prefix: str | None) -> set[int]:
        return {row.usd_micros for row in await db.spend.list_spend(prefix)}

    assert await amounts(None) == {1, 2, 3, 4, 5, 6}
    assert await amounts("team:") == {1, 2, 3, 5, 6}
    # `_` and `%` are not wildcards here.
    assert await amounts("team:a_") == {1, 3}
    assert await amounts("team:100%") == {5}
    assert await amounts("nothing") == set()


async def test_concurrent_batches_sum_exactly(database_url: str, db: Database) -> None:
    async with await Database.open(database_url) as other:
        # 60 batches from two engines (two workers), each touching shared rows in its own order.
        batches = [
            [
                ("team:shared", "2025-01", 1_000),
                (f"key:{number % 5}", "2025-01", number),
                ("global", "total", 7),
            ][:: 1 if number % 2 else -1]
            for number in range(60)
        ]
        await asyncio.gather(
            *(
                (db if number % 2 else other).spend.add_spend(batch)
                for number, batch in enumerate(batches)
            )
        )
    assert await db.spend.get_spend("team:shared", "2025-01") == 60_000
    assert await db.spend.get_spend("global", "total") == 420
    for key in range(5):
        expected = sum(number for number in range(60) if number % 5 == key)
        assert await db.spend.get_spend(f"key:{key}", "2025-01") == expected


async def test_spend_does_not_move_the_key_revision(db: Database) -> None:
    await db.spend.add_spend([("team:x", "2025-01", 10)])
    assert await db.current_revision() == 0
