"""From counters to answers: the 429 a refused request gets, and the headers a granted one carries.

Both backends hand over the same `Levels` (before the charge when refusing, after it when
granting), so messages and headers do not depend on where the counters live.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from lockgate.errors import RateLimited
from lockgate.limits.buckets import Levels, seconds_to_full, seconds_until
from lockgate.limits.quotas import Quota

__all__ = ["format_reset", "grant_headers", "ratelimit_headers", "refusal", "too_large"]

Dimension = Literal["requests", "tokens"]


def format_reset(seconds: float) -> str:
    """A duration as OpenAI writes `x-ratelimit-reset-*`: "120ms", "1s", "6m0s", "1h0m2.5s"."""
    if seconds <= 0:
        return "0s"
    ms = math.ceil(round(seconds * 1000, 6))
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _wait_words(seconds: float) -> str:
    if seconds < 10:
        return f"{max(math.ceil(round(seconds * 10, 6)), 1) / 10:.1f}s"
    return f"{math.ceil(seconds)}s"


def _binding(
    quotas: Sequence[Quota], levels: Sequence[Levels], dimension: Dimension
) -> tuple[int, int, float] | None:
    """(limit, remaining, seconds until full) of the quota with the fewest remaining."""
    best: tuple[int, int, float] | None = None
    for quota, level in zip(quotas, levels, strict=True):
        if dimension == "requests":
            limit, value = quota.rpm, level.requests
        else:
            limit, value = quota.tpm, level.tokens
        if limit is None or value is None:
            continue
        remaining = max(math.floor(round(value, 6)), 0)
        reset = seconds_to_full(value, limit)
        if best is None or (remaining, -reset) < (best[1], -best[2]):
            best = (limit, remaining, reset)
    return best


def ratelimit_headers(quotas: Sequence[Quota], levels: Sequence[Levels]) -> list[tuple[str, str]]:
    """The six `x-ratelimit-*` headers; a pair is left out when no quota sets that limit."""
    headers = []
    for dimension in ("requests", "tokens"):
        binding = _binding(quotas, levels, dimension)
        if binding is not None:
            limit, remaining, reset = binding
            headers += [
                (f"x-ratelimit-limit-{dimension}", str(limit)),
                (f"x-ratelimit-remaining-{dimension}", str(remaining)),
                (f"x-ratelimit-reset-{dimension}", format_reset(reset)),
            ]
    return headers


_HEADER_NAMES = {
    dimension: tuple(
        f"x-ratelimit-{part}-{dimension}".encode() for part in ("limit", "remaining", "reset")
    )
    for dimension in ("requests", "tokens")
}


def grant_headers(quotas: Sequence[Quota], levels: Sequence[Levels]) -> list[tuple[bytes, bytes]]:
    """`ratelimit_headers` as bytes, on every granted request: kept to one pass per dimension."""
    if len(quotas) == 1:  # the common case: a key's or a team's own limits
        quota, level = quotas[0], levels[0]
        headers: list[tuple[bytes, bytes]] = []
        if quota.rpm is not None and level.requests is not None:
            headers += _encoded("requests", quota.rpm, level.requests)
        if quota.tpm is not None and level.tokens is not None:
            headers += _encoded("tokens", quota.tpm, level.tokens)
        return headers
    return [(k.encode(), v.encode()) for k, v in ratelimit_headers(quotas, levels)]


def _encoded(dimension: Dimension, limit: int, level: float) -> list[tuple[bytes, bytes]]:
    limit_name, remaining_name, reset_name = _HEADER_NAMES[dimension]
    remaining = max(math.floor(round(level, 6)), 0)
    reset = format_reset(seconds_to_full(level, limit))
    return [
        (limit_name, str(limit).encode()),
        (remaining_name, str(remaining).encode()),
        (reset_name, reset.encode()),
    ]


def too_large(quotas: Sequence[Quota], tokens: int) -> RateLimited | None:
    """A request needing more tokens than a bucket holds can never pass: say so, not "retry"."""
    for quota in quotas:
        if quota.tpm is not None and tokens > quota.tpm:
            error = RateLimited(
                f"Request of about {tokens} tokens is larger than the rate limit of {quota.tpm} "
                f"tokens per minute for {quota.label}; it cannot be admitted however long you wait",
                headers={"x-should-retry": "false"},
            )
            error.retryable = False
            return error
    return None


def _full(quota: Quota, level: Levels) -> bool:
    in_flight, parallel = level.in_flight, quota.parallel
    return in_flight is not None and parallel is not None and in_flight >= parallel


def refusal(quotas: Sequence[Quota], levels: Sequence[Levels], tokens: int) -> RateLimited | None:
    """The 429 for a request that does not fit now, naming the limit it waits on longest."""
    longest: tuple[float, str] | None = None
    busy: str | None = None
    for quota, level in zip(quotas, levels, strict=True):
        waits: list[tuple[float, str]] = []
        if quota.rpm is not None and level.requests is not None and level.requests < 1:
            wait = seconds_until(level.requests, 1, quota.rpm)
            waits.append((wait, f"{quota.rpm} requests per minute"))
        if quota.tpm is not None and level.tokens is not None and level.tokens < tokens:
            wait = seconds_until(level.tokens, tokens, quota.tpm)
            waits.append((wait, f"{quota.tpm} tokens per minute"))
        for wait, what in waits:
            if longest is None or wait > longest[0]:
                longest = (wait, f"Rate limit of {what} reached for {quota.label}")
        if busy is None and _full(quota, level):
            busy = f"Limit of {quota.parallel} parallel requests reached for {quota.label}"
    if longest is None and busy is None:
        return None
    if longest is not None:
        wait, what = longest
        message = f"{what}; retry after {_wait_words(wait)}"
        retry_after = max(math.ceil(round(wait, 6)), 1)
    else:
        message = f"{busy}; retry when one of them has finished"
        retry_after = 1
    headers = {"retry-after": str(retry_after), **dict(ratelimit_headers(quotas, levels))}
    return RateLimited(message, headers=headers)
