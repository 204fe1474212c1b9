"""The bare app under a caller's own runner (no handler cancellation) still notices disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web

from lockgate.simulate.server import create_simulator_app, start_simulator
from lockgate.simulate.settings import SimulatorSettings
from lockgate.simulate.state import STATE_KEY
from tests.simulate.sim_helpers import AUTH, chat_body, read_events


async def _wait_until(condition: Callable[[], bool], within_s: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("directive", ["hang=1", "latency_ms=5000", "stall_after=1"])
async def test_disconnect_detected_without_handler_cancellation(directive: str) -> None:
    app = create_simulator_app(SimulatorSettings(completion_tokens=3))
    runner = web.AppRunner(app)  # aiohttp's default: handlers are not cancelled
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stats = app[STATE_KEY].stats
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{site.port}/v1/chat/completions"
            headers = {**AUTH, "x-simulate": directive}
            if not directive.startswith("stall"):
                request = asyncio.ensure_future(
                    http.post(url, json=chat_body(stream=True), headers=headers)
                )
                await _wait_until(lambda: stats.in_flight == 1)
                request.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await request
            else:
                response = await http.post(url, json=chat_body(stream=True), headers=headers)
                assert [
                    e["choices"][0]["delta"]["content"] for e in await read_events(response, 2)
                ] == ["", "Simulated"]
                await asyncio.sleep(0.1)
                assert stats.in_flight == 1
                response.close()
        await _wait_until(lambda: stats.cancelled == 1 and stats.in_flight == 0)
    finally:
        await runner.cleanup()


async def test_settings_apply(http: aiohttp.ClientSession) -> None:
    settings = SimulatorSettings(completion_tokens=3, embedding_dims=5, latency_ms=50)
    async with await start_simulator(settings) as sim:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with http.post(
            f"{sim.base_url}/chat/completions", json=chat_body(), headers=AUTH
        ) as r:
            body = await r.json()
        assert loop.time() - started >= 0.05
        assert body["choices"][0]["message"]["content"] == "Simulated reply to:"
        async with http.post(
            f"{sim.base_url}/embeddings", json={"model": "e", "input": "x"}, headers=AUTH
        ) as r:
            assert len((await r.json())["data"][0]["embedding"]) == 5
