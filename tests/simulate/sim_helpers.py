"""Shared helpers for the simulator tests (raw HTTP and SSE reading)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Callable
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from lockgate.simulate.server import RunningSimulator

AUTH = {"Authorization": "Bearer test-key"}
USER_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "sim-small", "messages": USER_MESSAGES, **extra}


async def post_json(
    http: aiohttp.ClientSession,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, CIMultiDictProxy[str], Any]:
    async with http.post(url, json=body, headers=AUTH if headers is None else headers) as resp:
        return resp.status, resp.headers, await resp.json(content_type=None)


def parse_sse(text: str) -> list[str]:
    """The ``data:`` payloads of a complete SSE body, checking the framing."""
    assert text.endswith("\n\n"), "every event must end with a blank line"
    payloads = []
    for event in text[:-2].split("\n\n"):
        assert event.startswith("data: "), event
        payloads.append(event[len("data: ") :])
    return payloads


async def read_events(resp: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    """Read exactly ``count`` SSE events (with their blank separator line) from a live response."""
    events: list[dict[str, Any]] = []
    while len(events) < count:
        line = await resp.content.readline()
        assert line.startswith(b"data: "), f"expected an event, got {line!r}"
        events.append(json.loads(line[len(b"data: ") :]))
        assert await resp.content.readline() == b"\n"
    return events


async def stats(http: aiohttp.ClientSession, sim: RunningSimulator) -> dict[str, Any]:
    async with http.get(f"{sim.root_url}/sim/stats") as resp:
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result


async def wait_for_stats(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    condition: Callable[[dict[str, Any]], bool],
    within_s: float = 1.0,
) -> dict[str, Any]:
    """Poll ``/sim/stats`` until ``condition`` holds; fail after ``within_s`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        current = await stats(http, sim)
        if condition(current):
            return current
        assert loop.time() < deadline, f"stats never matched: {current}"
        await asyncio.sleep(0.02)


async def collect_content(stream: AsyncIterable[Any], seen: list[str]) -> None:
    """Append each chunk's content to ``seen`` (kept even if the stream then fails)."""
    async for chunk in stream:
        seen.append(chunk.choices[0].delta.content or "")


async def collect_lines(resp: aiohttp.ClientResponse, seen: list[bytes]) -> None:
    async for line in resp.content:
        seen.append(line)
