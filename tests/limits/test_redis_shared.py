"""What only Redis can show: limits and budgets shared by separate clients and processes."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from lockgate.errors import RateLimited
from lockgate.limits import BudgetScope, Grant, Quota
from lockgate.limits.lua import LuaScript
from lockgate.limits.redis_budget import RedisBudgetLedger
from lockgate.limits.redis_rate import RedisRateLimiter
from tests.limits.conftest import connect, delete_prefix, unique_prefix, warm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def prefix(redis_server_url: str) -> AsyncIterator[str]:
    prefix = unique_prefix()
    yield prefix
    client = connect(redis_server_url)
    await delete_prefix(client, prefix)
    await client.aclose()


@pytest.fixture
async def clients(redis_server_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two clients with their own connection pools, as two workers would have."""
    first, second = connect(redis_server_url), connect(redis_server_url)
    yield first, second
    await first.aclose()
    await second.aclose()


async def granted(limiter: RedisRateLimiter, quota: Quota, count: int) -> int:
    results = await asyncio.gather(
        *(limiter.acquire([quota], 0) for _ in range(count)), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, RateLimited):
            raise result
    return sum(isinstance(result, Grant) for result in results)


async def test_two_pools_and_a_second_process_share_one_rpm(
    redis_server_url: str, prefix: str, clients: tuple[Redis, Redis]
) -> None:
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.limits.rate_worker",
        redis_server_url,
        prefix,
        "100",
        "100",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert worker.stdin is not None
    assert worker.stdout is not None
    assert await asyncio.wait_for(worker.stdout.readline(), 30) == b"ready\n"
    quota = Quota("key:shared", "key 'shared'", rpm=100)
    first, second = (RedisRateLimiter(client, prefix) for client in clients)
    await asyncio.gather(*(warm(client) for client in clients))
    await first.snapshot([quota])
    await second.snapshot([quota])

    worker.stdin.write(b"go\n")
    await worker.stdin.drain()
    here = await asyncio.gather(granted(first, quota, 100), granted(second, quota, 100))
    there = int(await asyncio.wait_for(worker.stdout.readline(), 30))
    assert await worker.wait() == 0

    # Each side alone would have been granted 100 (it asked for that many): the total shows one
    # counter, whichever side happened to be first.
    assert 100 <= sum(here) + there <= 102


SCOPE = BudgetScope("team:platform", "team 'platform'", 1_000_000, "month", (0.5, 0.8))


async def nothing_spent(scope: str, period: str) -> int:
    return 0


async def test_alerts_fire_once_across_ledgers(prefix: str, clients: tuple[Redis, Redis]) -> None:
    scope = SCOPE
    ledgers = [RedisBudgetLedger(client, prefix, nothing_spent) for client in clients]
    crossed = []
    for turn in range(10):
        ledger = ledgers[turn % 2]
        reservation = await ledger.reserve([scope], 100_000)
        crossed += await ledger.settle(reservation, 100_000)
    assert [(c.fraction, c.spent_micros) for c in crossed] == [(0.5, 500_000), (0.8, 800_000)]


async def test_two_ledgers_seed_a_new_counter_once(
    prefix: str, clients: tuple[Redis, Redis]
) -> None:
    loads = []

    async def recorded(scope: str, period: str) -> int:
        loads.append(scope)
        await asyncio.sleep(0.01)
        return 400_000

    ledgers = [RedisBudgetLedger(client, prefix, recorded) for client in clients]
    await asyncio.gather(*(ledgers[turn % 2].reserve([SCOPE], 10_000) for turn in range(20)))

    spent, reserved, _ = await ledgers[0].usage(SCOPE)
    assert len(loads) >= 2  # both found no counter and loaded ...
    assert (spent, reserved) == (400_000, 200_000)  # ... but the spend counts once


async def test_an_alert_is_not_repeated_when_the_counter_is_seeded_again(
    prefix: str, clients: tuple[Redis, Redis]
) -> None:
    client, _ = clients
    recorded = 0

    async def records(scope: str, period: str) -> int:
        return recorded

    ledger = RedisBudgetLedger(client, prefix, records)
    reservation = await ledger.reserve([SCOPE], 600_000)
    assert [c.fraction for c in await ledger.settle(reservation, 600_000)] == [0.5]
    # The counter is lost (evicted, say) and the durable records lag behind the real spend.
    period = reservation.period_ids[0]
    assert await client.delete(f"{prefix}budget:team:platform:{period}") == 1
    recorded = 400_000

    reservation = await ledger.reserve([SCOPE], 200_000)
    assert await ledger.settle(reservation, 200_000) == []  # 0.5 was reported already


async def test_every_key_expires(prefix: str, clients: tuple[Redis, Redis]) -> None:
    client, _ = clients
    limiter = RedisRateLimiter(client, prefix)
    ledger = RedisBudgetLedger(client, prefix, nothing_spent)
    await limiter.acquire([Quota("key:a", "key 'a'", rpm=60, tpm=1000, parallel=2)], 100)
    reservation = await ledger.reserve([SCOPE], 900_000)
    await ledger.settle(reservation, 900_000)  # sets the alert markers too
    await ledger.reserve([SCOPE], 10_000)  # held, so the holds set exists

    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]

    assert len(keys) == 6  # bucket, leases; account, holds, two markers
    for key in keys:
        ttl_s = await client.pttl(key) / 1000
        assert ttl_s > 0, key
        if b":rl:" in key:
            assert ttl_s <= 15 * 60 + 1, key  # a full bucket in 61 s, the lease in 15 min
        else:
            assert ttl_s <= 36 * 86400, key  # the month's end and a day


async def test_a_forgotten_script_is_loaded_again(clients: tuple[Redis, Redis]) -> None:
    """A script the server has never seen (as after a restart) runs by EVAL, then by SHA."""
    client, _ = clients
    source = f"-- {uuid.uuid4().hex}\nreturn {{ARGV[1], KEYS[1]}}"
    script = LuaScript(client, source)
    assert await client.script_exists(script.sha) == [False]

    assert await script(["some-key"], ["hello"]) == ["hello", "some-key"]

    assert await client.script_exists(script.sha) == [True]
    assert await script(["other"], [42]) == ["42", "other"]
