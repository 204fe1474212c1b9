"""Everything a simulator app instance owns (settings, counters, fault state)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from lockgate.simulate.settings import SimulatorSettings
from lockgate.simulate.stats import FailureBudget, SimulatorStats

ECHO_HISTORY = 64


@dataclass(slots=True)
class SimulatorState:
    settings: SimulatorSettings
    stats: SimulatorStats = field(default_factory=SimulatorStats)
    failures: FailureBudget = field(default_factory=FailureBudget)
    # The last requests that asked for an echo (`x-sim-echo-headers: 1`), oldest first.
    echoes: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ECHO_HISTORY))

    def reset(self) -> None:
        self.stats.reset()
        self.failures.reset()
        self.echoes.clear()


STATE_KEY = web.AppKey("lockgate_simulator_state", SimulatorState)
