"""Run a request against its targets: retries with backoff, the next target, then fallbacks.

Order of tries: for the model and then each of its fallbacks, up to `1 + retries` rounds over
the model's targets (in strategy order, skipping cooled-down and paused ones), with exponential
backoff and jitter between rounds. A provider's `retry-after` is honoured: the target is paused
that long (or cooled down when it asks for longer than `max_retry_after_s`) and never tried
sooner. Client errors (4xx other than 408/409/429) end the request at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from lockgate.config.models import RoutingConfig
from lockgate.errors import BadRequest, GatewayError, UpstreamTimeout
from lockgate.routing.facts import RequestFacts
from lockgate.routing.router import Route, Router, Target

__all__ = ["AttemptRunner", "Attempted"]

log = logging.getLogger("lockgate.routing")

R = TypeVar("R")
Attempt = Callable[[Target, float], Awaitable[R]]


@dataclass(frozen=True, slots=True)
class Attempted(Generic[R]):
    result: R
    target: Target
    attempts: int


class _Tally:
    """What went wrong so far, to choose the error the client finally gets."""

    __slots__ = ("attempts", "last_error", "no_rule", "rate_limits", "too_long")

    def __init__(self) -> None:
        self.attempts = 0
        self.last_error: GatewayError | None = None
        self.rate_limits: list[float] = []
        self.too_long = False
        self.no_rule = False


class AttemptRunner:
    def __init__(self, router: Router, routing: RoutingConfig, rng: random.Random | None = None):
        self._router = router
        self._health = router.health
        self._routing = routing
        self._rng = rng or random.Random()

    async def run(
        self,
        model: str,
        facts: RequestFacts | None,
        attempt: Attempt[R],
        deadline: float | None,
    ) -> Attempted[R]:
        """The first successful attempt, or the error that best explains why none succeeded."""
        tally = _Tally()
        route = self._router.resolve(model, facts)
        done = await self._try_route(route, facts, attempt, deadline, tally)
        if done is not None:
            return done
        for name in route.fallbacks:
            fallback = self._router.resolve(name, facts)
            done = await self._try_route(fallback, facts, attempt, deadline, tally)
            if done is not None:
                return done
        raise self._final_error(model, tally)

    async def _try_route(
        self,
        route: Route,
        facts: RequestFacts | None,
        attempt: Attempt[R],
        deadline: float | None,
        tally: _Tally,
    ) -> Attempted[R] | None:
        if not route.targets:  # a rules-only model none of whose rules matched
            tally.no_rule = True
            return None
        targets = self._router.candidates(route, facts)
        if not targets:
            tally.too_long = True
            return None
        timeout_s = route.timeout_s or self._routing.timeout_s
        health = self._health
        for round_ in range(self._routing.retries + 1):
            if round_ and not await self._wait_before_round(round_, targets, deadline):
                return None
            for target in targets:
                label = target.label
                if not health.available(label):
                    continue
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    return None
                tally.attempts += 1
                health.start(label)
                started = time.monotonic()
                deadline_binds = remaining is not None and remaining < timeout_s
                try:
                    result = await attempt(
                        target, timeout_s if remaining is None else min(timeout_s, remaining)
                    )
                except UpstreamTimeout as error:
                    if deadline_binds:  # the request ran out of time, not the target
                        health.finished(label)
                        tally.last_error = _deadline_error(error)
                        return None
                    self._record_failure(target, error, tally)
                    continue
                except GatewayError as error:
                    self._record_failure(target, error, tally)
                    continue
                except BaseException:
                    health.finished(label)
                    raise
                health.succeeded(label, time.monotonic() - started)
                return Attempted(result, target, tally.attempts)
        return None

    def _record_failure(self, target: Target, error: GatewayError, tally: _Tally) -> None:
        label = target.label
        if error.code in _TARGET_SPECIFIC:
            # This target cannot serve the request (a parameter or operation it lacks, or the
            # gateway's key for it is refused); another target may. The latter counts as a
            # failure so the target cools down.
            if error.code == "upstream_auth_failed":
                self._health.failed(label)
            else:
                self._health.finished(label)
            tally.last_error = error
            return
        if not error.retryable:
            self._health.finished(label)
            error.attempts = tally.attempts
            raise error
        tally.last_error = error
        wait_s = _retry_after_s(error)
        if error.status == 429:
            self._health.finished(label)
            wait_s = self._routing.backoff_s if wait_s is None else wait_s
            tally.rate_limits.append(wait_s)
        else:
            self._health.failed(label)
        if wait_s is not None:  # the provider said when to come back (429, 503, 529)
            if wait_s > self._routing.max_retry_after_s:
                self._health.cool_down(label, wait_s)
            else:
                self._health.pause(label, wait_s)
        log.info("attempt on %s failed: %s", label, error.code or error.status)

    async def _wait_before_round(
        self, round_: int, targets: list[Target], deadline: float | None
    ) -> bool:
        """Sleep the backoff (at least until a target may be tried); False: give up instead."""
        soonest = min(self._health.pause_s(target.label) for target in targets)
        if soonest > self._routing.max_retry_after_s:
            return False
        backoff = min(self._routing.backoff_max_s, self._routing.backoff_s * 2 ** (round_ - 1))
        delay = max(soonest, backoff * (0.5 + self._rng.random() / 2))
        remaining = _remaining(deadline)
        if remaining is not None and delay >= remaining:
            return False
        await asyncio.sleep(delay)
        return True

    def _final_error(self, model: str, tally: _Tally) -> GatewayError:
        if tally.attempts == 0:
            if tally.no_rule and not tally.too_long:
                error: GatewayError = BadRequest(
                    f"No rule of model '{model}' matches this request",
                    param="model",
                    code="no_matching_rule",
                )
            elif tally.too_long:
                error = BadRequest(
                    f"The request is longer than the context window of every target of '{model}'",
                    param="messages",
                    code="context_length_exceeded",
                )
            else:
                error = GatewayError(
                    f"Every target of '{model}' is cooling down after failures; try again later",
                    code="no_healthy_target",
                    status=503,
                    headers={"retry-after": "1"},
                )
        elif tally.rate_limits and len(tally.rate_limits) == tally.attempts:
            wait_s = min(tally.rate_limits)
            error = GatewayError(
                f"Every target of '{model}' is rate-limited by its provider",
                code="upstream_rate_limited",
                status=429,
                headers={"retry-after": str(max(1, round(wait_s)))},
            )
            error.type = "rate_limit_error"
        else:
            assert tally.last_error is not None
            error = tally.last_error
        error.attempts = tally.attempts
        return error


_TARGET_SPECIFIC = frozenset(
    {"unsupported_parameter", "unsupported_operation", "upstream_auth_failed"}
)


def _deadline_error(cause: GatewayError) -> GatewayError:
    error = GatewayError(
        "The request ran out of time (routing.deadline_s) before a provider answered",
        code="deadline_exceeded",
        status=504,
    )
    error.type = cause.type
    return error


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - asyncio.get_running_loop().time()


def _retry_after_s(error: GatewayError) -> float | None:
    value = error.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: treat as unknown
