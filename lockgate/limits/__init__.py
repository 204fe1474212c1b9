"""Rate limits and budgets, counted in memory (one process) or in Redis (every process).

The Redis backends (`redis_rate`, `redis_budget`) are imported from their modules, not from here:
a gateway without Redis never loads redis-py.
"""

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
    "Reservation",
    "build_limiters",
    "period_end",
    "period_id",
]
