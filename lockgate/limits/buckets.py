"""Token-bucket arithmetic shared by both rate-limit backends.

Each limit is a bucket holding up to the limit, refilled continuously at limit/60 per second, as
OpenAI's limits behave: a full bucket allows a burst of the whole limit, then one unit every
60/limit seconds. The token bucket may go below zero when a request used more than its estimate;
later requests then wait until it has refilled.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MINUTE_S", "Levels", "refill", "seconds_to_full", "seconds_until"]

MINUTE_S = 60.0


@dataclass(frozen=True, slots=True)
class Levels:
    """A quota's counters at one instant. None where the quota sets no such limit."""

    requests: float | None
    tokens: float | None
    in_flight: int | None


def refill(level: float | None, limit: int | None, elapsed_s: float) -> float | None:
    """The level after `elapsed_s` of refilling; a bucket never seen (None) is full."""
    if limit is None:
        return None
    if level is None:
        return float(limit)
    return min(float(limit), level + max(elapsed_s, 0.0) * limit / MINUTE_S)


def seconds_until(level: float, needed: float, limit: int) -> float:
    """Time until the bucket holds `needed`."""
    return max(needed - level, 0.0) * MINUTE_S / limit


def seconds_to_full(level: float | None, limit: int | None) -> float:
    if level is None or limit is None:
        return 0.0
    return seconds_until(level, limit, limit)
