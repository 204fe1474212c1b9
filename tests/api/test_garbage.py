"""Requests leave no reference cycles: each would wait for the cyclic garbage collector, which
then costs a busy worker CPU time and memory (a task per request for disconnect detection once
left a dozen such objects per request)."""

from __future__ import annotations

import aiohttp

from tests.api.conftest import cyclic_garbage

BODY = {"model": "sim/sim-small", "messages": [{"role": "user", "content": "hi"}]}


async def test_answered_requests_leave_no_cyclic_garbage(gateway_url: str) -> None:
    async with aiohttp.ClientSession() as http:

        async def chat(**extra: object) -> None:
            url = f"{gateway_url}/v1/chat/completions"
            async with http.post(url, json={**BODY, **extra}) as response:
                assert response.status == 200
                await response.read()

        async def both() -> None:
            await chat()
            await chat(stream=True)

        ours = await cyclic_garbage(both, times=20)
    assert not ours, ours
