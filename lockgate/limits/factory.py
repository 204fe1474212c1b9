"""Pick the backends: Redis when the gateway has one (global limits), memory otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockgate.limits.budgets import BudgetLedger, LoadSpend
from lockgate.limits.memory_budget import MemoryBudgetLedger
from lockgate.limits.memory_rate import MemoryRateLimiter
from lockgate.limits.quotas import RateLimiter

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["build_limiters"]


def build_limiters(
    client: Redis | None, prefix: str, load: LoadSpend
) -> tuple[RateLimiter, BudgetLedger]:
    """Memory backends count per process: exact for one worker only (the caller refuses
    `workers > 1` with limits and no Redis)."""
    if client is None:
        return MemoryRateLimiter(), MemoryBudgetLedger(load)
    from lockgate.limits.redis_budget import RedisBudgetLedger  # redis-py: only when used
    from lockgate.limits.redis_rate import RedisRateLimiter

    return RedisRateLimiter(client, prefix), RedisBudgetLedger(client, prefix, load)
