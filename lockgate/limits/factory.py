"""Pick the backends: Redis when the gateway has one (global limits), memory otherwise."""

from __future__ import annotations

from redis.asyncio import Redis

from lockgate.limits.budgets import BudgetLedger, LoadSpend
from lockgate.limits.memory_budget import MemoryBudgetLedger
from lockgate.limits.memory_rate import MemoryRateLimiter
from lockgate.limits.quotas import RateLimiter
from lockgate.limits.redis_budget import RedisBudgetLedger
from lockgate.limits.redis_rate import RedisRateLimiter

__all__ = ["build_limiters"]


def build_limiters(
    client: Redis | None, prefix: str, load: LoadSpend
) -> tuple[RateLimiter, BudgetLedger]:
    """Memory backends count per process: exact for one worker only (the caller refuses
    `workers > 1` with limits and no Redis)."""
    if client is None:
        return MemoryRateLimiter(), MemoryBudgetLedger(load)
    return RedisRateLimiter(client, prefix), RedisBudgetLedger(client, prefix, load)
