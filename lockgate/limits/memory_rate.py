"""Rate limits for one process: exact, with no locks, because nothing awaits between the check
and the charge (asyncio runs `acquire` to its end in one step)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lockgate.limits.buckets import Levels, refill, seconds_to_full
from lockgate.limits.quotas import LEASE_S, Grant, Quota, QuotaState, active_quotas, quota_state
from lockgate.limits.verdict import grant_headers, refusal, too_large

__all__ = ["MemoryRateLimiter"]

SWEEP_AT = 10_000
"""Bucket count that triggers dropping idle ones (keys come from config, models from globs)."""


@dataclass(slots=True)
class _Bucket:
    requests: float | None
    tokens: float | None
    stamp: float
    full_at: float
    """When both buckets are full again, so the record holds nothing worth keeping."""


class MemoryRateLimiter:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, lease_s: float = LEASE_S
    ) -> None:
        self._clock = clock
        self._lease_s = lease_s
        self._buckets: dict[str, _Bucket] = {}
        self._leases: dict[str, dict[str, float]] = {}
        """Per quota key: lease id -> expiry. Leases all last `lease_s` on a monotonic clock,
        so insertion order is expiry order and expired ones are found at the front."""
        self._sweep_at = SWEEP_AT
        self._lease_ids = itertools.count()

    async def acquire(self, quotas: Sequence[Quota], tokens: int) -> Grant:
        active = active_quotas(quotas)
        tokens = max(tokens, 0)
        # A lease names a parallel slot; only this process sees it, so a counter will do.
        lease = str(next(self._lease_ids))
        if not active:
            return Grant(lease, active, tokens, [])
        error = too_large(active, tokens)
        if error is not None:
            raise error
        now = self._clock()
        levels = [self._levels(quota, now) for quota in active]
        error = refusal(active, levels, tokens)
        if error is not None:
            raise error
        charged = []
        for index, quota in enumerate(active):
            level = levels[index]
            requests, remaining_tokens, in_flight = level.requests, level.tokens, level.in_flight
            after = Levels(
                None if requests is None else requests - 1,
                None if remaining_tokens is None else remaining_tokens - tokens,
                None if in_flight is None else in_flight + 1,
            )
            self._store(quota, after, now)
            if quota.parallel is not None:
                self._leases.setdefault(quota.key, {})[lease] = now + self._lease_s
            charged.append(after)
        if len(self._buckets) >= self._sweep_at:
            self._sweep(now)
        return Grant(lease, active, tokens, grant_headers(active, charged))

    async def settle(self, grant: Grant, tokens: int) -> None:
        if grant.settled:
            return
        grant.settled = True
        excess = max(tokens, 0) - grant.tokens
        now = self._clock()
        for quota in grant.quotas:
            if quota.tpm is not None and excess:
                level = self._levels(quota, now)
                corrected = min(float(quota.tpm), (level.tokens or 0.0) - excess)
                self._store(quota, Levels(level.requests, corrected, None), now)
            leases = self._leases.get(quota.key)
            if leases is not None:
                leases.pop(grant.lease, None)
                if not leases:
                    del self._leases[quota.key]

    async def snapshot(self, quotas: Sequence[Quota]) -> list[QuotaState]:
        now = self._clock()
        states = []
        for quota in quotas:
            level = self._levels(quota, now)
            states.append(quota_state(quota, level))
        return states

    async def close(self) -> None:
        self._buckets.clear()
        self._leases.clear()

    def _levels(self, quota: Quota, now: float) -> Levels:
        bucket = self._buckets.get(quota.key)
        in_flight = None
        if quota.parallel is not None:
            in_flight = self._live_leases(quota.key, now)
        if bucket is None:
            return Levels(refill(None, quota.rpm, 0), refill(None, quota.tpm, 0), in_flight)
        elapsed = now - bucket.stamp
        return Levels(
            refill(bucket.requests, quota.rpm, elapsed),
            refill(bucket.tokens, quota.tpm, elapsed),
            in_flight,
        )

    def _live_leases(self, key: str, now: float) -> int:
        leases = self._leases.get(key)
        if not leases:
            return 0
        expired = []
        for lease, expiry in leases.items():
            if expiry > now:
                break
            expired.append(lease)
        for lease in expired:
            del leases[lease]
        return len(leases)

    def _store(self, quota: Quota, level: Levels, now: float) -> None:
        if quota.rpm is None and quota.tpm is None:
            return
        full_in = max(
            seconds_to_full(level.requests, quota.rpm), seconds_to_full(level.tokens, quota.tpm)
        )
        bucket = self._buckets.get(quota.key)
        if bucket is None:
            self._buckets[quota.key] = _Bucket(level.requests, level.tokens, now, now + full_in)
        else:  # updated in place: no allocation per request
            bucket.requests, bucket.tokens = level.requests, level.tokens
            bucket.stamp, bucket.full_at = now, now + full_in

    def _sweep(self, now: float) -> None:
        """Forget buckets that have refilled; at most once per doubling of the count."""
        if len(self._buckets) < self._sweep_at:
            return
        for key in [key for key, bucket in self._buckets.items() if bucket.full_at <= now]:
            del self._buckets[key]
        self._sweep_at = max(SWEEP_AT, 2 * len(self._buckets))
