"""Budgets as the ledger sees them: scopes, reservations, alert crossings, and the interface both
backends offer.

Money is integer micro-USD throughout: floats would drift as thousands of small costs add up. A
request reserves its estimated cost in every scope before the call and settles the real cost
after it, so concurrent requests cannot together overshoot a budget.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

from lockgate.config.models import BudgetConfig, BudgetPeriod
from lockgate.errors import BudgetExceeded

__all__ = [
    "HOLD_S",
    "MICROS_PER_USD",
    "BudgetLedger",
    "BudgetScope",
    "BudgetUsage",
    "Crossing",
    "LoadSpend",
    "Reservation",
    "budget_exceeded",
    "fits",
    "format_usd",
    "unique_scopes",
]

MICROS_PER_USD = 1_000_000
HOLD_S = 15 * 60.0
"""How long a reservation is held when it is never settled or released (a crashed process)."""

LoadSpend = Callable[[str, str], Awaitable[int]]
"""(scope key, period id) -> micro-USD already spent, from the durable usage records."""


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """One budget: `key` names its counter ("key:ci-bot", "team:platform"); `label` is what
    messages call it ("team 'platform'")."""

    key: str
    label: str
    limit_micros: int
    period: BudgetPeriod
    alert_at: tuple[float, ...] = ()

    @classmethod
    def of(cls, key: str, label: str, budget: BudgetConfig) -> BudgetScope:
        limit = round(Decimal(repr(budget.usd)) * MICROS_PER_USD)
        return cls(key, label, limit, budget.period, tuple(budget.alert_at))

    def thresholds(self) -> tuple[tuple[float, int], ...]:
        """(fraction, micro-USD) of each alert: reached when spend is at least that amount."""
        return tuple(
            (fraction, math.ceil(Decimal(repr(fraction)) * self.limit_micros))
            for fraction in self.alert_at
        )


@dataclass(eq=False, slots=True)
class Reservation:
    """Money held for one request in each scope, in the period current at reservation time
    (its cost is counted there); settle or release it exactly once (later calls do nothing)."""

    id: str
    scopes: tuple[BudgetScope, ...]
    period_ids: tuple[str, ...]
    """The period of each scope, in the same order."""
    micros: int
    done: bool = field(default=False, compare=False)

    def periods(self) -> tuple[tuple[str, str], ...]:
        """(scope key, period id) of each scope held."""
        return tuple(
            (scope.key, period) for scope, period in zip(self.scopes, self.period_ids, strict=True)
        )


@dataclass(frozen=True, slots=True)
class Crossing:
    """An alert threshold reached for the first time in a scope's period."""

    scope: str
    """The scope's key ("team:platform")."""
    label: str
    fraction: float
    spent_micros: int
    limit_micros: int
    period: str

    @classmethod
    def of(cls, scope: BudgetScope, fraction: float, spent: int, period: str) -> Crossing:
        return cls(scope.key, scope.label, fraction, spent, scope.limit_micros, period)


class BudgetUsage(NamedTuple):
    spent_micros: int
    reserved_micros: int
    period: str


class BudgetLedger(Protocol):
    async def reserve(self, scopes: Sequence[BudgetScope], micros: int) -> Reservation:
        """Hold `micros` in every scope, or in none (`BudgetExceeded`)."""
        ...

    async def settle(self, reservation: Reservation, micros: int) -> list[Crossing]:
        """Replace the held amount by the real cost; the alert thresholds this crossed."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Give the held amount back: the call failed and cost nothing."""
        ...

    async def usage(self, scope: BudgetScope) -> BudgetUsage: ...

    async def close(self) -> None: ...


def fits(scope: BudgetScope, spent: int, held: int, micros: int) -> bool:
    """Room for `micros` more; a budget already spent admits nothing, not even a free call."""
    return spent < scope.limit_micros and spent + held + micros <= scope.limit_micros


def unique_scopes(scopes: Sequence[BudgetScope]) -> tuple[BudgetScope, ...]:
    """The first scope of each key and period: one counter is charged once."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for scope in scopes:
        if (scope.key, scope.period) not in seen:
            seen.add((scope.key, scope.period))
            unique.append(scope)
    return tuple(unique)


def format_usd(micros: int) -> str:
    """ "$4.99", "$1,000.00", or every digit needed for fractions of a cent ("$0.001234")."""
    value = Decimal(micros) / MICROS_PER_USD
    if micros % 10_000 == 0:
        return f"${value:,.2f}"
    return f"${value:,.6f}".rstrip("0")


_PER = {"day": "per day", "week": "per week", "month": "per month", "total": "in total"}


def budget_exceeded(
    scope: BudgetScope, spent: int, held: int, micros: int, ends: datetime | None
) -> BudgetExceeded:
    """'Budget of $5.00 per month for team 'platform' is spent ($4.99 used); it resets at ...'"""
    budget = f"Budget of {format_usd(scope.limit_micros)} {_PER[scope.period]} for {scope.label}"
    if spent + held >= scope.limit_micros or micros == 0:
        state = f"is spent ({format_usd(spent)} used"
    else:
        state = f"has no room for this request ({format_usd(spent)} used"
        state += f", {format_usd(micros)} estimated for this request"
    if held:
        state += f", {format_usd(held)} held by requests in flight"
    if ends is None:
        when = "it does not reset"
    else:
        when = f"it resets at {ends.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return BudgetExceeded(f"{budget} {state}); {when}")
