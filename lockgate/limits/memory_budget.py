"""Budgets for one process: exact, because nothing awaits between the check and the hold.

The spend of a scope's period is loaded once per process (the first time it is touched) from
the durable usage records, then kept here; only the newest period of each scope is kept.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import takewhile

from lockgate.config.models import BudgetPeriod
from lockgate.limits.budgets import (
    HOLD_S,
    BudgetScope,
    BudgetUsage,
    Crossing,
    LoadSpend,
    Reservation,
    budget_exceeded,
    fits,
    unique_scopes,
)
from lockgate.limits.periods import period_end, period_id

__all__ = ["MemoryBudgetLedger"]


@dataclass(slots=True)
class _Account:
    """One scope's period: spend, the reservations held (id -> amount, expiry) and their sum."""

    spent: int
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)
    held: int = 0
    alerted: set[float] = field(default_factory=set)

    def hold(self, reservation: str, micros: int, until: float) -> None:
        self.holds[reservation] = (micros, until)
        self.held += micros

    def unhold(self, reservation: str) -> None:
        entry = self.holds.pop(reservation, None)
        if entry is not None:
            self.held -= entry[0]

    def purge(self, now: float) -> None:
        """Drop expired holds. All last `hold_s`, so they expire in insertion order."""
        items = takewhile(lambda item: item[1][1] <= now, self.holds.items())
        for reservation in [reservation for reservation, _ in items]:
            self.unhold(reservation)


class MemoryBudgetLedger:
    def __init__(
        self,
        load: LoadSpend,
        clock: Callable[[], float] = time.time,
        *,
        hold_s: float = HOLD_S,
    ) -> None:
        """`clock` gives seconds since the epoch: it decides the period as well as expiries."""
        self._load = load
        self._clock = clock
        self._hold_s = hold_s
        self._accounts: dict[tuple[str, str], _Account] = {}
        self._newest: dict[tuple[str, BudgetPeriod], str] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[int]] = {}

    async def reserve(self, scopes: Sequence[BudgetScope], micros: int) -> Reservation:
        if micros < 0:
            raise ValueError(f"a reservation cannot be negative, got {micros}")
        unique = unique_scopes(scopes)
        now = self._clock()
        when = datetime.fromtimestamp(now, UTC)
        periods = tuple(period_id(scope.period, when) for scope in unique)
        accounts = [
            await self._account(scope, period)
            for scope, period in zip(unique, periods, strict=True)
        ]
        # Nothing awaits from here on: the check and the hold happen in one step.
        for scope, account in zip(unique, accounts, strict=True):
            account.purge(now)
            if not fits(scope, account.spent, account.held, micros):
                ends = period_end(scope.period, when)
                raise budget_exceeded(scope, account.spent, account.held, micros, ends)
        reservation = Reservation(uuid.uuid4().hex, unique, periods, micros)
        for account in accounts:
            account.hold(reservation.id, micros, now + self._hold_s)
        return reservation

    async def settle(self, reservation: Reservation, micros: int) -> list[Crossing]:
        if reservation.done:
            return []
        reservation.done = True
        micros = max(micros, 0)
        crossings = []
        for scope, period in zip(reservation.scopes, reservation.period_ids, strict=True):
            account = self._accounts.get((scope.key, period))
            if account is None:
                continue  # a period gone by and forgotten; the durable record has the spend
            account.unhold(reservation.id)
            before = account.spent
            account.spent += micros
            for fraction, threshold in scope.thresholds():
                if before < threshold <= account.spent and fraction not in account.alerted:
                    account.alerted.add(fraction)
                    crossings.append(Crossing.of(scope, fraction, account.spent, period))
        return crossings

    async def release(self, reservation: Reservation) -> None:
        if reservation.done:
            return
        reservation.done = True
        for scope, period in zip(reservation.scopes, reservation.period_ids, strict=True):
            account = self._accounts.get((scope.key, period))
            if account is not None:
                account.unhold(reservation.id)

    async def usage(self, scope: BudgetScope) -> BudgetUsage:
        now = self._clock()
        period = period_id(scope.period, datetime.fromtimestamp(now, UTC))
        account = await self._account(scope, period)
        account.purge(now)
        return BudgetUsage(account.spent, account.held, period)

    async def close(self) -> None:
        for pending in self._loading.values():
            pending.cancel()
        self._loading.clear()
        self._accounts.clear()
        self._newest.clear()

    async def _account(self, scope: BudgetScope, period: str) -> _Account:
        """The scope's account for `period`, loading its spend once however many ask at once."""
        slot = (scope.key, period)
        account = self._accounts.get(slot)
        if account is not None:
            return account
        pending = self._loading.get(slot)
        if pending is None:
            pending = self._loading[slot] = asyncio.ensure_future(self._load(scope.key, period))
            pending.add_done_callback(lambda _: self._loading.pop(slot, None))
        spent = await asyncio.shield(pending)
        account = self._accounts.get(slot)
        if account is None:
            account = self._accounts[slot] = _Account(spent)
            self._forget_older(scope, period)
        return account

    def _forget_older(self, scope: BudgetScope, period: str) -> None:
        """Period ids sort in time order, so the newest of a scope is kept and older dropped."""
        older = self._newest.get((scope.key, scope.period))
        if older is None or older < period:
            self._newest[(scope.key, scope.period)] = period
            if older is not None:
                self._accounts.pop((scope.key, older), None)
