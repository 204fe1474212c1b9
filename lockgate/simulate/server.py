"""Public entry points: build the app, run it in-process, or serve it from the CLI."""

from __future__ import annotations

from types import TracebackType

from aiohttp import web

from lockgate.simulate.app import create_simulator_app
from lockgate.simulate.processes import run_simulator
from lockgate.simulate.settings import SimulatorSettings
from lockgate.simulate.sockets import BACKLOG, url_host
from lockgate.simulate.state import STATE_KEY, SimulatorState

# In-process simulators are test/demo helpers: closing one should not wait long for
# hanging or stalled requests (aiohttp waits up to twice this before cutting them).
CLOSE_GRACE_S = 0.1

__all__ = [
    "RunningSimulator",
    "create_simulator_app",
    "run_simulator",
    "start_simulator",
]


class RunningSimulator:
    """A simulator serving on the current event loop (see :func:`start_simulator`)."""

    def __init__(self, app: web.Application, runner: web.AppRunner, host: str, port: int) -> None:
        self.app = app
        self._runner = runner
        self.host = host
        self.port = port

    @property
    def root_url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, e.g. ``http://127.0.0.1:53211/v1``."""
        return f"{self.root_url}/v1"

    @property
    def state(self) -> SimulatorState:
        """Live counters and fault state, for in-process assertions."""
        return self.app[STATE_KEY]

    async def close(self) -> None:
        """Stop serving; requests still running after a short grace period are cut."""
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningSimulator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def start_simulator(
    settings: SimulatorSettings | None = None, host: str = "127.0.0.1", port: int = 0
) -> RunningSimulator:
    """Start serving on the running loop; ``port=0`` picks a free port."""
    app = create_simulator_app(settings)
    runner = web.AppRunner(
        app,
        access_log=None,
        handler_cancellation=True,  # a client disconnect cancels its handler at once
        shutdown_timeout=CLOSE_GRACE_S,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=BACKLOG)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return RunningSimulator(app, runner, host, site.port)
