"""Rate limits as the limiter sees them: quotas, grants, and the interface both backends offer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

from lockgate.config.models import RateLimits
from lockgate.limits.buckets import Levels

__all__ = [
    "LEASE_S",
    "Grant",
    "Quota",
    "QuotaState",
    "RateLimiter",
    "active_quotas",
    "quota_state",
]

LEASE_S = 15 * 60.0
"""How long a parallel slot is held when its grant is never settled (a crashed worker, a bug):
longer than any request should take, short enough that a leak heals itself."""


@dataclass(frozen=True, slots=True)
class Quota:
    """One set of limits on one counter.

    `key` names the counter and is chosen by the caller ("key:ci-bot", "team:platform",
    "key:ci-bot|model:gpt-4o*"); every quota with the same key shares one counter. `label` is
    what messages call it ("key 'ci-bot'"). A limit of None is no limit.
    """

    key: str
    label: str
    rpm: int | None = None
    tpm: int | None = None
    parallel: int | None = None

    @classmethod
    def of(cls, key: str, label: str, limits: RateLimits) -> Quota:
        return cls(key, label, limits.rpm, limits.tpm, limits.parallel)

    @property
    def limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.parallel is not None


@dataclass(eq=False, slots=True)
class Grant:
    """Admission of one request: settle it exactly once when the request ends."""

    lease: str
    quotas: tuple[Quota, ...]
    tokens: int
    """Tokens charged at admission (the estimate); `settle` corrects by the real count."""
    headers: list[tuple[bytes, bytes]]
    """`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` of the most constraining quota."""
    settled: bool = field(default=False, compare=False)

    @property
    def needs_settling(self) -> bool:
        """Whether `settle` has anything to do: correct tokens, or free a parallel slot."""
        return not self.settled and any(
            q.tpm is not None or q.parallel is not None for q in self.quotas
        )


class QuotaState(TypedDict):
    """A quota's counters now, for the admin API. Counts are None where the quota sets no limit;
    remaining tokens go below zero when real usage exceeded the estimates."""

    key: str
    label: str
    rpm: int | None
    tpm: int | None
    parallel: int | None
    remaining_requests: int | None
    remaining_tokens: int | None
    in_flight: int | None


class RateLimiter(Protocol):
    async def acquire(self, quotas: Sequence[Quota], tokens: int) -> Grant:
        """Charge one request and `tokens` against every quota, or nothing (`RateLimited`)."""
        ...

    async def settle(self, grant: Grant, tokens: int) -> None:
        """Correct the token charge to the real count and free the parallel slot (once)."""
        ...

    async def snapshot(self, quotas: Sequence[Quota]) -> list[QuotaState]: ...

    async def close(self) -> None: ...


def active_quotas(quotas: Sequence[Quota]) -> tuple[Quota, ...]:
    """Quotas that limit something, the first of each key only (a counter is charged once)."""
    seen: set[str] = set()
    active = []
    for quota in quotas:
        if quota.limited and quota.key not in seen:
            seen.add(quota.key)
            active.append(quota)
    return tuple(active)


def quota_state(quota: Quota, level: Levels) -> QuotaState:
    return QuotaState(
        key=quota.key,
        label=quota.label,
        rpm=quota.rpm,
        tpm=quota.tpm,
        parallel=quota.parallel,
        remaining_requests=_whole(level.requests),
        remaining_tokens=_whole(level.tokens),
        in_flight=level.in_flight,
    )


def _whole(level: float | None) -> int | None:
    return None if level is None else math.floor(round(level, 6))
