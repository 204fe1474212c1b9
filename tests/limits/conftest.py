"""Every behavioural test runs against both backends: memory (with a fake clock, so it is exact)
and a real Redis (real time, a unique key prefix per test)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from lockgate.limits import (
    BudgetLedger,
    MemoryBudgetLedger,
    MemoryRateLimiter,
    RateLimiter,
)
from lockgate.limits.budgets import HOLD_S
from lockgate.limits.quotas import LEASE_S
from lockgate.limits.redis_budget import RedisBudgetLedger
from lockgate.limits.redis_rate import RedisRateLimiter

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
"""A Friday in ISO week 48; the month ends in four days."""


@dataclass
class FakeClock:
    """Monotonic and wall time that move only when told to."""

    offset: float = 0.0

    def monotonic(self) -> float:
        return 1000.0 + self.offset

    def time(self) -> float:
        return START.timestamp() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class SpendRecords:
    """The durable spend `load` reads: preset amounts, and every call counted."""

    spent: dict[tuple[str, str], int] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    delay_s: float = 0.0

    async def load(self, scope: str, period: str) -> int:
        self.calls.append((scope, period))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.spent.get((scope, period), 0)


@dataclass
class Rig:
    """Builds limiters and ledgers of one backend; `wait` lets time pass for both kinds."""

    backend: str
    clock: FakeClock
    redis: Redis | None
    prefix: str
    records: SpendRecords = field(default_factory=SpendRecords)

    @property
    def exact(self) -> bool:
        """Memory runs on the fake clock: no time passes between two calls."""
        return self.redis is None

    def limiter(self, *, lease_s: float = LEASE_S, client: Redis | None = None) -> RateLimiter:
        if self.redis is None:
            return MemoryRateLimiter(self.clock.monotonic, lease_s=lease_s)
        return RedisRateLimiter(client or self.redis, self.prefix, lease_s=lease_s)

    def ledger(
        self,
        *,
        hold_s: float = HOLD_S,
        load: Callable[[str, str], Awaitable[int]] | None = None,
        client: Redis | None = None,
    ) -> BudgetLedger:
        load = load or self.records.load
        if self.redis is None:
            return MemoryBudgetLedger(load, self.clock.time, hold_s=hold_s)
        return RedisBudgetLedger(
            client or self.redis, self.prefix, load, hold_s=hold_s, clock=self.clock.time
        )

    async def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)
        if self.redis is not None:
            await asyncio.sleep(seconds)


def connect(url: str) -> Redis:
    """A client whose pool waits for a free connection rather than failing beyond its size
    (redis-py's default pool raises past 100 connections in use)."""
    return Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=50, timeout=10))


async def warm(client: Redis, connections: int = 50) -> None:
    """Open the pool's connections before a burst, so connecting does not serialize it."""
    await asyncio.gather(*(client.ping() for _ in range(connections)))


def unique_prefix() -> str:
    return f"lockgate-test:{uuid.uuid4().hex[:12]}:"


async def delete_prefix(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    if request.param == "memory":
        yield Rig("memory", FakeClock(), None, "")
        return
    client = connect(request.getfixturevalue("redis_server_url"))
    prefix = unique_prefix()
    yield Rig("redis", FakeClock(), client, prefix)
    await delete_prefix(client, prefix)
    await client.aclose()
