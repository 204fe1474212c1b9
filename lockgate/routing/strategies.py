"""Order a model's targets for one request. Each strategy is O(targets), in memory."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lockgate.routing.health import HealthBook

if TYPE_CHECKING:
    from lockgate.routing.router import Target

__all__ = ["STRATEGIES", "Order"]

Order = Callable[["Sequence[Target]", HealthBook, random.Random], "list[Target]"]

EXPLORATION = 0.05
"""Share of requests the latency strategy sends to a random target, so a recovered or
never-measured target gets measured."""


def weighted(targets: Sequence[Target], _: HealthBook, rng: random.Random) -> list[Target]:
    """Random by weight; the rest follow in weighted random order (for retries)."""
    if len(targets) == 1:
        return list(targets)
    remaining = list(targets)
    ordered = []
    while remaining:
        pick = rng.choices(remaining, weights=[t.weight for t in remaining])[0]
        ordered.append(pick)
        remaining.remove(pick)
    return ordered


def in_order(targets: Sequence[Target], _: HealthBook, __: random.Random) -> list[Target]:
    return list(targets)


def lowest_latency(
    targets: Sequence[Target], health: HealthBook, rng: random.Random
) -> list[Target]:
    """Fastest recent first; unmeasured targets first of all; sometimes a random one first."""
    ordered = sorted(targets, key=lambda t: health.get(t.label).latency_s or 0.0)
    if len(ordered) > 1 and rng.random() < EXPLORATION:
        ordered.insert(0, ordered.pop(rng.randrange(len(ordered))))
    return ordered


def least_busy(targets: Sequence[Target], health: HealthBook, rng: random.Random) -> list[Target]:
    """Fewest requests in flight first; ties broken at random."""
    return sorted(targets, key=lambda t: (health.get(t.label).in_flight, rng.random()))


def cheapest(targets: Sequence[Target], _: HealthBook, __: random.Random) -> list[Target]:
    """Lowest price first (input + output per million tokens); unpriced targets last."""
    return sorted(targets, key=lambda t: t.unit_price)


STRATEGIES: dict[str, Order] = {
    "weighted": weighted,
    "fallback": in_order,
    "latency": lowest_latency,
    "least-busy": least_busy,
    "cost": cheapest,
}
