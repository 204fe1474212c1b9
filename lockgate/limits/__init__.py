"""Rate limits and budgets, counted in memory (one process) or in Redis (every process)."""

from lockgate.limits.budgets import (
    BudgetLedger,
    BudgetScope,
    BudgetUsage,
    Crossing,
    LoadSpend,
    Reservation,
)
from lockgate.limits.factory import build_limiters
from lockgate.limits.memory_budget import MemoryBudgetLedger
from lockgate.limits.memory_rate import MemoryRateLimiter
from lockgate.limits.periods import period_end, period_id
from lockgate.limits.quotas import Grant, Quota, QuotaState, RateLimiter
from lockgate.limits.redis_budget import RedisBudgetLedger
from lockgate.limits.redis_rate import RedisRateLimiter

__all__ = [
    "BudgetLedger",
    "BudgetScope",
    "BudgetUsage",
    "Crossing",
    "Grant",
    "LoadSpend",
    "MemoryBudgetLedger",
    "MemoryRateLimiter",
    "Quota",
    "QuotaState",
    "RateLimiter",
    "RedisBudgetLedger",
    "RedisRateLimiter",
    "Reservation",
    "build_limiters",
    "period_end",
    "period_id",
]
