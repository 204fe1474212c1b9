"""Streaming: chunk-by-chunk relay, usage, tools, in-band failures and client disconnects."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import openai
import pytest

from lockgate.simulate.server import RunningSimulator

USER = [{"role": "user", "content": "Tell me a story"}]


async def test_stream_delivers_all_chunks_and_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim/sim-small?tokens=12",  # type: ignore[arg-type]
        messages=USER,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert len(text.split()) == 12
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens == 12


async def test_stream_is_relayed_as_it_arrives(gateway_url: str) -> None:
    """10 chunks at 20/s take ~0.5 s upstream; the first must reach the client long before."""
    body = {"model": "sim/sim-small?tokens=10&tokens_per_s=20", "messages": USER, "stream": True}
    arrivals = []
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.post(f"{gateway_url}/v1/chat/completions", json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for _ in response.content.iter_any():
                arrivals.append(time.monotonic() - started)
    assert arrivals[-1] > 0.4
    assert arrivals[0] < 0.25
    assert len(arrivals) >= 5


async def test_streamed_tool_call_arguments_reassemble(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        stream=True,
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
            }
        ],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    name, arguments, finish = "", "", None
    async for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or []:
            name += (call.function and call.function.name) or ""
            arguments += (call.function and call.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather"
    assert "city" in json.loads(arguments)
    assert finish == "tool_calls"


@pytest.mark.parametrize("fault", ["truncate_after=3", "error_after=3"])
async def test_stream_failure_after_start_raises_in_the_sdk(
    client: openai.AsyncOpenAI, fault: str
) -> None:
    stream = await client.chat.completions.create(
        model=f"sim/sim-small?tokens=10&{fault}",  # type: ignore[arg-type]
        messages=USER,  # type: ignore[arg-type]
        stream=True,
    )
    received = 0
    with pytest.raises(openai.APIError):
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received += 1
    assert received == 3


async def test_stream_stalling_after_start_ends_with_an_error(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim/sim-small?tokens=10&stall_after=2",  # type: ignore[arg-type]
        messages=USER,  # type: ignore[arg-type]
        stream=True,
    )
    started = time.monotonic()
    with pytest.raises(openai.APIError, match=r"did not answer within 1\.5s"):
        async for _ in stream:
            pass
    assert time.monotonic() - started < 3


async def test_stream_failing_before_start_is_an_http_error(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model="sim/sim-small?status=429",  # type: ignore[arg-type]
            messages=USER,  # type: ignore[arg-type]
            stream=True,
        )
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(
            model="sim/sim-small?hang=1",  # type: ignore[arg-type]
            messages=USER,  # type: ignore[arg-type]
            stream=True,
        )
    assert info.value.status_code == 504


async def _sim_stats(simulator: RunningSimulator) -> dict[str, int]:
    root = simulator.base_url.removesuffix("/v1")
    async with aiohttp.ClientSession() as http, http.get(f"{root}/sim/stats") as response:
        return await response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("stream", [True, False])
async def test_client_disconnect_cancels_the_upstream_request(
    gateway_url: str, simulator: RunningSimulator, stream: bool
) -> None:
    """Streaming mid-way, or non-streaming while waiting: upstream closed within a second
    (Lockgate's HTTP protocol reports the lost connection)."""
    await _assert_upstream_cancelled_on_disconnect(gateway_url, simulator, stream)


@pytest.mark.parametrize("stream", [True, False])
async def test_client_disconnect_is_noticed_under_a_plain_asgi_server(
    plain_server_gateway_url: str, simulator: RunningSimulator, stream: bool
) -> None:
    """Under another ASGI server a task waits for `http.disconnect` instead."""
    await _assert_upstream_cancelled_on_disconnect(plain_server_gateway_url, simulator, stream)


async def _assert_upstream_cancelled_on_disconnect(
    gateway_url: str, simulator: RunningSimulator, stream: bool
) -> None:
    before = await _sim_stats(simulator)
    directive = "tokens=200&tokens_per_s=10" if stream else "latency_ms=10000"
    body = {"model": f"sim/sim-small?{directive}", "messages": USER, "stream": stream}
    async with aiohttp.ClientSession() as http:
        request = asyncio.ensure_future(http.post(f"{gateway_url}/v1/chat/completions", json=body))
        if stream:
            response = await request
            await response.content.readany()
            await asyncio.sleep(0.2)
            response.close()
        else:
            await asyncio.sleep(0.3)
            request.cancel()
        closed_at = time.monotonic()
        while time.monotonic() - closed_at < 1.0:
            stats = await _sim_stats(simulator)
            if stats["cancelled"] > before["cancelled"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"upstream still busy 1 s after the client left: {stats}")
