from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
import openai

from lockgate.simulate.server import RunningSimulator, start_simulator
from lockgate.simulate.settings import SimulatorSettings
from tests.conftest import config_from_yaml, running_gateway

USER = [{"role": "user", "content": "hello"}]


@asynccontextmanager
async def simulators(count: int) -> AsyncIterator[list[RunningSimulator]]:
    """One simulator per target, so each target's traffic can be counted on its own."""
    async with AsyncExitStack() as stack:
        sims = []
        for _ in range(count):
            sim = await start_simulator(SimulatorSettings(completion_tokens=5))
            stack.push_async_callback(sim.close)
            sims.append(sim)
        yield sims


async def stats(sim: RunningSimulator) -> dict[str, Any]:
    root = sim.base_url.removesuffix("/v1")
    async with aiohttp.ClientSession() as http, http.get(f"{root}/sim/stats") as response:
        return await response.json()  # type: ignore[no-any-return]


def providers_yaml(sims: list[RunningSimulator]) -> str:
    lines = ["providers:"]
    for index, sim in enumerate(sims):
        lines.append(
            f'  - {{name: p{index}, type: openai, base_url: "{sim.base_url}", api_key: k}}'
        )
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def gateway(
    sims: list[RunningSimulator], models_yaml: str, routing_yaml: str = ""
) -> AsyncIterator[openai.AsyncOpenAI]:
    text = providers_yaml(sims) + models_yaml + routing_yaml
    # The SDK's aiohttp transport: its default httpx2 transport (openai 3.51, httpx2 2.16.2)
    # loses a request now and then under 32-way concurrency, also against the simulator
    # alone, which made these load tests flaky for reasons outside Lockgate.
    async with (
        running_gateway(config_from_yaml(text)) as url,
        openai.AsyncOpenAI(
            base_url=f"{url}/v1",
            api_key="x",
            max_retries=0,
            timeout=30,
            http_client=openai.DefaultAioHttpClient(),
        ) as client,
    ):
        yield client


Chat = Callable[..., Any]
