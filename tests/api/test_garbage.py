"""Requests leave no reference cycles: each would wait for the cyclic garbage collector, which
then costs a busy worker CPU time and memory (a task per request for disconnect detection once
left a dozen such objects per request)."""

from __future__ import annotations

import gc
from collections import Counter

import aiohttp

BODY = {"model": "sim/sim-small", "messages": [{"role": "user", "content": "hi"}]}


async def test_answered_requests_leave_no_cyclic_garbage(gateway_url: str) -> None:
    async with aiohttp.ClientSession() as http:

        async def chat(**extra: object) -> None:
            url = f"{gateway_url}/v1/chat/completions"
            async with http.post(url, json={**BODY, **extra}) as response:
                assert response.status == 200
                await response.read()

        await chat()
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(20):
                await chat()
                await chat(stream=True)
            gc.collect()
            ours = [
                thing
                for thing in gc.garbage
                if type(thing).__module__.split(".")[0] in ("lockgate", "uvicorn")
            ]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert not ours, Counter(type(thing).__qualname__ for thing in ours)
