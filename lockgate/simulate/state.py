"""Everything a simulator app instance owns (settings, counters, fault state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from lockgate.simulate.settings import SimulatorSettings
from lockgate.simulate.stats import FailureBudget, SimulatorStats


@dataclass(slots=True)
class SimulatorState:
    settings: SimulatorSettings
    stats: SimulatorStats = field(default_factory=SimulatorStats)
    failures: FailureBudget = field(default_factory=FailureBudget)

    def reset(self) -> None:
        self.stats.reset()
        self.failures.reset()


STATE_KEY = web.AppKey("lockgate_simulator_state", SimulatorState)
