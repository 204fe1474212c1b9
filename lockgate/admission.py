"""The admit stage (DESIGN §2, step 3) and its settlement after the call.

Before the call: the model must be allowed; rate limits are charged (requests, estimated tokens,
a parallel slot); the request's largest possible cost is reserved against every budget, so
concurrent requests cannot overshoot one. After the call a `Ticket` settles: tokens are corrected
to the real count, the reservation becomes the real cost, spend goes to the database, and newly
crossed alert thresholds are announced. Settling runs off the hot path, in a task.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine

from lockgate.auth.policy import Principal
from lockgate.config.models import Price
from lockgate.errors import PermissionDenied
from lockgate.limits import BudgetLedger, Crossing, Grant, RateLimiter, Reservation
from lockgate.usage.prices import cost_micros
from lockgate.usage.reported import Usage

__all__ = ["Admission", "Ticket"]

log = logging.getLogger("lockgate.admission")

DEFAULT_RESERVED_OUTPUT_TOKENS = 4096
"""Output tokens reserved for a budget when the request sets no `max_tokens`."""
INPUT_ESTIMATE_MARGIN = 1.25
"""The input estimate is a heuristic; the reservation allows for it running a quarter low."""

Headers = list[tuple[bytes, bytes]]


class Admission:
    """Admits requests against a caller's policy and settles them afterwards."""

    def __init__(
        self,
        limiter: RateLimiter,
        ledger: BudgetLedger,
        on_settled: Callable[[Reservation, int, list[Crossing]], None] | None = None,
    ) -> None:
        self._limiter = limiter
        self._ledger = ledger
        self._on_settled = on_settled
        self._tasks: set[asyncio.Task[None]] = set()

    async def admit(
        self,
        principal: Principal,
        model: str,
        input_tokens: int,
        max_output_tokens: int | None,
        price: Price | None,
    ) -> Ticket:
        policy = principal.policy
        if not policy.allows(model):
            who = "This key" if principal.kind == "key" else "This caller"
            raise PermissionDenied(
                f"{who} may not use model '{model}'", param="model", code="model_not_allowed"
            )
        quotas = policy.quotas(model)
        if not quotas and not policy.budgets:
            return FREE
        # The budget first: a request it refuses must not use up a rate limit (refused
        # reservations hold nothing, while a request counted against `rpm` stays counted).
        reservation = None
        if policy.budgets:
            reserve = cost_micros(
                price,
                math.ceil(input_tokens * INPUT_ESTIMATE_MARGIN),
                max_output_tokens or DEFAULT_RESERVED_OUTPUT_TOKENS,
            )
            reservation = await self._ledger.reserve(policy.budgets, reserve)
        grant = None
        if quotas:
            try:
                grant = await self._limiter.acquire(quotas, input_tokens + (max_output_tokens or 0))
            except BaseException:
                if reservation is not None:
                    await self._ledger.release(reservation)
                raise
        return Ticket(self, grant, reservation)

    def spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("settling a request failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for every pending settlement (at shutdown: no usage is dropped)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _settle(
        self, grant: Grant | None, reservation: Reservation | None, tokens: int, micros: int
    ) -> None:
        if grant is not None:
            await self._limiter.settle(grant, tokens)
        if reservation is not None:
            crossings = await self._ledger.settle(reservation, micros)
            if self._on_settled is not None:
                self._on_settled(reservation, micros, crossings)

    async def _release(self, grant: Grant | None, reservation: Reservation | None) -> None:
        if grant is not None:
            await self._limiter.settle(grant, 0)
        if reservation is not None:
            await self._ledger.release(reservation)


class Ticket:
    """One admitted request: its rate-limit headers, and settlement once the call is over."""

    __slots__ = ("_admission", "_done", "_grant", "_reservation", "headers")

    def __init__(
        self,
        admission: Admission | None,
        grant: Grant | None,
        reservation: Reservation | None,
    ) -> None:
        self._admission = admission
        # Nothing to settle when no token count needs correcting, no slot needs freeing and
        # no budget is held: then settling the request costs no task.
        self._grant = grant if grant is not None and grant.needs_settling else None
        self._reservation = reservation
        self._done = admission is None or (self._grant is None and reservation is None)
        self.headers: Headers = grant.headers if grant is not None else []

    def settle(self, usage: Usage, micros: int) -> None:
        """The call is over: it used `usage`, costing `micros` micro-USD."""
        if self._done or self._admission is None:
            return
        self._done = True
        self._admission.spawn(
            self._admission._settle(self._grant, self._reservation, usage.total, micros)
        )

    def release(self) -> None:
        """The call failed: nothing was used beyond the request itself."""
        if self._done or self._admission is None:
            return
        self._done = True
        self._admission.spawn(self._admission._release(self._grant, self._reservation))


FREE = Ticket(None, None, None)
"""The ticket of a caller with no limits and no budget: nothing to settle."""
