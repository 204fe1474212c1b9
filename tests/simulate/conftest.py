"""Fixtures: a real simulator on an ephemeral loopback port, plus clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from lockgate.simulate.server import RunningSimulator, start_simulator
from lockgate.simulate.settings import SimulatorSettings


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    simulator = await start_simulator(SimulatorSettings())
    try:
        yield simulator
    finally:
        await simulator.close()


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=sim.base_url, api_key="test-key", max_retries=0)
    try:
        yield sdk
    finally:
        await sdk.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
