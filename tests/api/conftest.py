from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import openai
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.conftest import config_from_yaml, free_port, running_gateway

PROVIDER_KEY = "sk-sim-provider-secret-4f9a2c"
AZURE_KEY = "az-provider-secret-77c1d0"


def gateway_yaml(sim: RunningSimulator, dead_port: int) -> str:
    root = sim.base_url.removesuffix("/v1")
    return f"""
server:
  max_body_bytes: 65536
  max_messages: 50
providers:
  - {{name: sim, type: openai, base_url: "{sim.base_url}", api_key: "${{SIM_KEY}}"}}
  - name: echo
    type: openai
    base_url: "{sim.base_url}"
    api_key: "${{SIM_KEY}}"
    headers: {{x-sim-echo-headers: "1"}}
  - name: azure-echo
    type: azure
    base_url: "{root}"
    api_key: "${{AZURE_KEY}}"
    api_version: "2024-10-21"
    headers: {{x-sim-echo-headers: "1"}}
  - {{name: dead, type: openai, base_url: "http://127.0.0.1:{dead_port}/v1"}}
models:
  - name: chat
    targets: [{{provider: sim, model: sim-small}}]
  - name: embed
    targets: [{{provider: sim, model: sim-embed}}]
  - name: echo
    targets: [{{provider: echo, model: upstream-name}}]
  - name: azure-echo
    targets: [{{provider: azure-echo, model: my-deployment}}]
  - name: refused
    targets: [{{provider: dead, model: anything}}]
  - name: "sim/*"
    targets: [{{provider: sim, model: "*"}}]
routing: {{timeout_s: 1.5, stream_idle_timeout_s: 1.5, retries: 0}}
"""


@pytest.fixture(scope="module")
async def gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    config = config_from_yaml(
        gateway_yaml(simulator, free_port()), SIM_KEY=PROVIDER_KEY, AZURE_KEY=AZURE_KEY
    )
    async with running_gateway(config) as url:
        yield url


@pytest.fixture(scope="module")
async def plain_server_gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    """The same gateway under uvicorn's own HTTP protocol, as any ASGI server would run it:
    no Lockgate extensions in the scope."""
    config = config_from_yaml(
        gateway_yaml(simulator, free_port()), SIM_KEY=PROVIDER_KEY, AZURE_KEY=AZURE_KEY
    )
    async with running_gateway(config, http="httptools") as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0)


async def cyclic_garbage(work: Callable[[], Awaitable[None]], times: int) -> Counter[str]:
    """Lockgate's and uvicorn's objects (by class) that `times` runs of `work`, after one run to
    warm up, left in reference cycles: each waits for the cyclic garbage collector, which then
    costs a busy worker CPU time and memory."""
    await work()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(times):
            await work()
        await asyncio.sleep(0.1)  # connections closed by the peer are finished with
        gc.collect()
        return Counter(
            type(thing).__qualname__
            for thing in gc.garbage
            if type(thing).__module__.split(".")[0] in ("lockgate", "uvicorn")
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
