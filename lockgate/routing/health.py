"""Per-target health: cooldowns (a circuit breaker), rate-limit pauses, latency, load.

In memory, one book per process; every decision is O(1) per target. A target whose consecutive
failures reach `cooldown.after_failures` is skipped for `cooldown.for_s`, then one request probes
it (half-open): success closes the breaker, failure opens it again.

A `HealthListener` (see `routing.shared_cooldowns`) is told when a breaker opens or closes or a
provider asks for a pause here, and the `shared_*` methods apply what other instances saw; they
never tell the listener, so a change is not echoed back.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lockgate.config.models import CooldownConfig

__all__ = ["HealthBook", "HealthListener", "TargetHealth"]

MAX_TRACKED_TARGETS = 4096
LATENCY_WINDOW = 9
"""Latency is the median of a target's last few answers: one slow outlier (a pause on either
side) must not send traffic to a target that is slower every time."""


@dataclass(slots=True)
class TargetHealth:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False
    paused_until: float = 0.0
    in_flight: int = 0
    latency_s: float | None = None
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    requests: int = 0
    opened_at: float = 0.0
    """When the breaker last opened (here or elsewhere), to ignore a close that happened before."""


class HealthListener(Protocol):
    """Told of state changes this process observed; called on the request path, so it must not
    block (it only queues the change)."""

    def opened(self, label: str, seconds: float) -> None: ...

    def paused(self, label: str, seconds: float) -> None: ...

    def closed(self, label: str) -> None: ...


class HealthBook:
    """Health of every target, keyed by its label (`provider/model`)."""

    def __init__(self, cooldown: CooldownConfig, clock: Callable[[], float] = time.monotonic):
        self._cooldown = cooldown
        self._clock = clock
        self._targets: dict[str, TargetHealth] = {}
        self._listener: HealthListener | None = None

    def listen(self, listener: HealthListener | None) -> None:
        self._listener = listener

    def get(self, label: str) -> TargetHealth:
        health = self._targets.get(label)
        if health is None:
            if len(self._targets) >= MAX_TRACKED_TARGETS:
                self._forget_idle()
            health = self._targets[label] = TargetHealth()
        return health

    def _forget_idle(self) -> None:
        """Drop records that hold nothing to remember (glob routes make labels from client text)."""
        now = self._clock()
        for label, health in list(self._targets.items()):
            if not health.in_flight and health.open_until <= now and health.paused_until <= now:
                del self._targets[label]

    def available(self, label: str) -> bool:
        """May a request be sent now? (A half-open target admits one probe at a time.)"""
        health = self._targets.get(label)
        if health is None or not (health.paused_until or health.open_until):
            return True
        now = self._clock()
        if health.paused_until > now:
            return False
        if health.open_until > now:
            return False
        return not (health.open_until and health.probing)

    def pause_s(self, label: str) -> float:
        """Seconds until a paused (rate-limited) target may be tried; inf while it cools down."""
        health = self._targets.get(label)
        if health is None:
            return 0.0
        now = self._clock()
        if health.open_until > now or (health.open_until and health.probing):
            return math.inf
        return max(0.0, health.paused_until - now)

    def start(self, label: str) -> None:
        health = self.get(label)
        health.in_flight += 1
        health.requests += 1
        if health.open_until:  # cooldown over: this request is the probe
            health.probing = True

    def succeeded(self, label: str, latency_s: float) -> None:
        health = self.get(label)
        was_probe = health.probing and health.open_until > 0
        health.in_flight -= 1
        health.failures = 0
        health.open_until = 0.0
        health.probing = False
        health.recent.append(latency_s)
        health.latency_s = statistics.median(health.recent)
        if was_probe and self._listener is not None:
            self._listener.closed(label)

    def failed(self, label: str) -> None:
        health = self.get(label)
        health.in_flight -= 1
        health.failures += 1
        if health.probing or health.failures >= self._cooldown.after_failures:
            self._open(label, health, self._cooldown.for_s)

    def failed_after_start(self, label: str) -> None:
        """A stream broke after it was handed to the client (its attempt already succeeded)."""
        health = self.get(label)
        health.failures += 1
        if health.failures >= self._cooldown.after_failures:
            self._open(label, health, self._cooldown.for_s)

    def _open(self, label: str, health: TargetHealth, seconds: float) -> None:
        now = self._clock()
        health.open_until = now + seconds
        health.opened_at = now
        health.probing = False
        if self._listener is not None:
            self._listener.opened(label, seconds)

    def hold(self, label: str) -> None:
        """A stream still uses the target after its attempt succeeded (see `release`)."""
        self.get(label).in_flight += 1

    def release(self, label: str) -> None:
        self.get(label).in_flight -= 1

    def finished(self, label: str) -> None:
        """The attempt ended for a reason that says nothing about the target's health."""
        health = self.get(label)
        health.in_flight -= 1
        health.probing = False

    def pause(self, label: str, seconds: float) -> None:
        """The provider asked for a pause (retry-after)."""
        health = self.get(label)
        until = self._clock() + seconds
        if until > health.paused_until:
            health.paused_until = until
            if self._listener is not None:
                self._listener.paused(label, seconds)

    def cool_down(self, label: str, seconds: float) -> None:
        self._open(label, self.get(label), seconds)

    def shared_cooldown(self, label: str, seconds: float, age_s: float) -> None:
        """Another instance opened the breaker `age_s` ago for `seconds` from now: skip the
        target until then, then probe it like after a cooldown of our own."""
        health = self.get(label)
        now = self._clock()
        if now + seconds > health.open_until:
            health.open_until = now + seconds
            health.opened_at = max(health.opened_at, now - age_s)
            health.probing = False

    def shared_pause(self, label: str, seconds: float) -> None:
        """Another instance's provider asked for a pause that lasts `seconds` from now."""
        health = self.get(label)
        health.paused_until = max(health.paused_until, self._clock() + seconds)

    def shared_close(self, label: str, age_s: float) -> None:
        """Another instance's probe succeeded `age_s` ago: stop skipping the target, unless its
        breaker opened (here or elsewhere) after that."""
        health = self._targets.get(label)
        if health is None or not health.open_until:
            return
        if health.opened_at > self._clock() - age_s:
            return
        health.open_until = 0.0
        health.probing = False
        health.failures = 0

    def snapshot(self) -> dict[str, dict[str, object]]:
        now = self._clock()
        return {
            label: {
                "state": "cooling_down"
                if health.open_until > now
                else "probing"
                if health.open_until
                else "healthy",
                "consecutive_failures": health.failures,
                "retry_in_s": round(max(health.open_until, health.paused_until, now) - now, 3),
                "in_flight": health.in_flight,
                "latency_ms": None
                if health.latency_s is None
                else round(health.latency_s * 1000, 1),
            }
            for label, health in self._targets.items()
        }
