"""Directives on the Anthropic format: errors, retry-after, pacing, broken streams, stats."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.simulate.sim_helpers import stats, wait_for_stats

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
USER = [{"role": "user", "content": "What is the capital of France?"}]


def body(model: str = "claude-sim", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 256, "messages": USER, **extra}


@pytest.fixture
async def claude(sim: RunningSimulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=sim.root_url, api_key="sk-ant-test", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


def url(sim: RunningSimulator) -> str:
    return f"{sim.root_url}/v1/messages"


@pytest.mark.parametrize(
    ("status", "kind", "exception"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (403, "permission_error", anthropic.PermissionDeniedError),
        (404, "not_found_error", anthropic.NotFoundError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (500, "api_error", anthropic.InternalServerError),
        (529, "overloaded_error", anthropic.InternalServerError),
    ],
)
async def test_status_directive(
    claude: anthropic.AsyncAnthropic,
    status: int,
    kind: str,
    exception: type[anthropic.APIStatusError],
) -> None:
    with pytest.raises(exception) as caught:
        await claude.messages.create(**body(f"claude-sim?status={status}"))
    error = caught.value
    assert error.status_code == status
    assert isinstance(error.body, dict)
    assert set(error.body) == {"type", "error", "request_id"}
    assert error.body["error"]["type"] == kind


async def test_overloaded_is_529_with_anthropics_message(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    async with http.post(
        url(sim), json=body("claude-sim?status=529&retry_after=2"), headers=HEADERS
    ) as resp:
        assert resp.status == 529
        assert resp.headers["retry-after"] == "2"
        assert "retry-after-ms" not in resp.headers  # OpenAI's header, not Anthropic's
        assert (await resp.json())["error"] == {"type": "overloaded_error", "message": "Overloaded"}


async def test_rate_limit_with_retry_after_from_header_directive(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    headers = {**HEADERS, "x-simulate": "status=429;retry_after=0.5"}
    async with http.post(url(sim), json=body(), headers=headers) as resp:
        assert resp.status == 429
        assert resp.headers["retry-after"] == "0.5"
        assert "rate limit" in (await resp.json())["error"]["message"]


async def test_fail_times_then_success(claude: anthropic.AsyncAnthropic) -> None:
    model = "claude-sim?fail_times=2&key=flaky-anthropic&status=529"
    for _ in range(2):
        with pytest.raises(anthropic.InternalServerError):
            await claude.messages.create(**body(model))
    message = await claude.messages.create(**body(model))
    assert message.stop_reason == "end_turn"


async def test_content_and_latency(claude: anthropic.AsyncAnthropic) -> None:
    started = time.monotonic()
    message = await claude.messages.create(
        **body("claude-sim"), extra_body={"simulate": {"content": "Paris.", "latency_ms": 120}}
    )
    assert time.monotonic() - started >= 0.12
    assert message.content[0].type == "text"
    assert message.content[0].text == "Paris."


async def test_tokens_per_s_paces_each_delta(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    payload = body(stream=True, simulate={"tokens": 6, "tokens_per_s": 50})
    arrivals: list[float] = []
    started = time.monotonic()
    async with http.post(url(sim), json=payload, headers=HEADERS) as resp:
        async for line in resp.content:
            if line.startswith(b"event: content_block_delta"):
                arrivals.append(time.monotonic())
    assert len(arrivals) == 6
    assert arrivals[-1] - started >= 0.115
    assert arrivals[-1] - arrivals[0] >= 0.05


async def test_error_after_sends_an_in_band_error_event(
    http: aiohttp.ClientSession, sim: RunningSimulator, claude: anthropic.AsyncAnthropic
) -> None:
    async with http.post(
        url(sim), json=body("claude-sim?error_after=2", stream=True), headers=HEADERS
    ) as resp:
        text = await resp.text()
    blocks = text.strip().split("\n\n")
    assert [block.split("\n")[0] for block in blocks] == [
        "event: message_start",
        "event: content_block_start",
        "event: ping",
        "event: content_block_delta",
        "event: content_block_delta",
        "event: error",
    ]
    error = json.loads(blocks[-1].split("\n")[1][len("data: ") :])
    assert error == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        async with claude.messages.stream(**body("claude-sim?error_after=2")) as stream:
            async for _ in stream:
                pass


async def test_truncate_after_cuts_the_connection(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    received: list[bytes] = []
    async with http.post(
        url(sim), json=body("claude-sim?truncate_after=3", stream=True), headers=HEADERS
    ) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for line in resp.content:
                received.append(line)
    deltas = [line for line in received if line.startswith(b"event: content_block_delta")]
    assert len(deltas) == 3
    assert not any(line.startswith(b"event: message_stop") for line in received)


async def test_stall_after_goes_silent_and_counts_the_cancellation(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    async with http.post(
        url(sim), json=body("claude-sim?stall_after=1", stream=True), headers=HEADERS
    ) as resp:
        seen = b""
        while b"content_block_delta" not in seen:
            seen += await resp.content.readany()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(resp.content.readany(), 0.3)
        resp.close()
    await wait_for_stats(http, sim, lambda s: s["cancelled"] == 1 and s["in_flight"] == 0)


async def test_hang_and_reset(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    request = asyncio.ensure_future(
        http.post(url(sim), json=body("claude-sim?hang=1"), headers=HEADERS)
    )
    await wait_for_stats(http, sim, lambda s: s["in_flight"] == 1)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await wait_for_stats(http, sim, lambda s: s["cancelled"] == 1 and s["in_flight"] == 0)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.post(url(sim), json=body("claude-sim?reset=1"), headers=HEADERS) as resp:
            await resp.read()


async def test_requests_are_counted_in_stats(
    claude: anthropic.AsyncAnthropic, http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    await claude.messages.create(**body("claude-a"))
    await claude.messages.create(**body("claude-b?tokens=2"))
    with pytest.raises(anthropic.InternalServerError):
        await claude.messages.create(**body("claude-b?status=529"))
    current = await stats(http, sim)
    assert current["total_requests"] == 3
    assert current["requests_by_model"] == {"claude-a": 1, "claude-b": 2}
    assert current["responses_by_status"] == {"200": 2, "529": 1}
