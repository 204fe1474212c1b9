"""Per-request scripting directives: errors, hangs, resets, broken streams, stats."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import openai
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.simulate.sim_helpers import (
    AUTH,
    USER_MESSAGES,
    chat_body,
    collect_content,
    collect_lines,
    post_json,
    read_events,
    stats,
    wait_for_stats,
)


@pytest.mark.parametrize(
    ("status", "error_type", "code", "exception"),
    [
        (400, "invalid_request_error", None, openai.BadRequestError),
        (401, "authentication_error", "invalid_api_key", openai.AuthenticationError),
        (404, "invalid_request_error", "model_not_found", openai.NotFoundError),
        (429, "requests", "rate_limit_exceeded", openai.RateLimitError),
        (500, "server_error", None, openai.InternalServerError),
        (503, "server_error", "overloaded", openai.InternalServerError),
    ],
)
async def test_status_directive(
    client: openai.AsyncOpenAI,
    status: int,
    error_type: str,
    code: str | None,
    exception: type[openai.APIStatusError],
) -> None:
    with pytest.raises(exception) as caught:
        await client.chat.completions.create(
            model=f"sim-small?status={status}", messages=USER_MESSAGES
        )
    error = caught.value
    assert error.status_code == status
    assert error.type == error_type
    assert error.code == code
    assert isinstance(error.body, dict)
    assert set(error.body) == {"message", "type", "param", "code"}


async def test_rate_limit_with_retry_after(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    status, headers, body = await post_json(
        http,
        f"{sim.base_url}/chat/completions",
        chat_body(model="sim-small?status=429&retry_after=2"),
    )
    assert status == 429
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "2000"
    assert body["error"]["message"].startswith("Rate limit reached")
    assert body["error"]["code"] == "rate_limit_exceeded"


async def test_header_and_body_directives_merge(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    url = f"{sim.base_url}/chat/completions"
    body = chat_body(model="sim-small?status=500", simulate={"status": 502, "retry_after": 0.5})
    status, headers, _ = await post_json(http, url, body)
    assert status == 502
    assert headers["retry-after"] == "0.5"
    assert headers["retry-after-ms"] == "500"
    status, _, _ = await post_json(http, url, body, {**AUTH, "x-simulate": "status=503"})
    assert status == 503


async def test_stream_request_gets_json_error(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    body = chat_body(stream=True, simulate={"status": 500})
    status, headers, result = await post_json(http, f"{sim.base_url}/chat/completions", body)
    assert status == 500
    assert headers["Content-Type"].startswith("application/json")
    assert result["error"]["type"] == "server_error"


@pytest.mark.parametrize(
    ("model", "header", "name"),
    [
        ("sim-small?statsu=500", None, "statsu"),
        ("sim-small?status=abc", None, "status"),
        ("sim-small?status=200", None, "status"),
        ("sim-small", "hang=maybe", "hang"),
        ("sim-small", "tokens=-1", "tokens"),
        ("sim-small", "oops", "oops"),
    ],
)
async def test_bad_directives_are_400(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    model: str,
    header: str | None,
    name: str,
) -> None:
    headers = {**AUTH, "x-simulate": header} if header else AUTH
    status, _, body = await post_json(
        http, f"{sim.base_url}/chat/completions", chat_body(model=model), headers
    )
    assert status == 400
    assert f"'{name}'" in body["error"]["message"]
    assert body["error"]["param"] == f"simulate.{name}"
    assert body["error"]["code"] == "invalid_simulator_directive"


async def test_tool_call_directive_without_tools_is_400(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="sim-small?tool_call=1", messages=USER_MESSAGES)
    assert caught.value.param == "simulate.tool_call"


async def test_latency(client: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    await client.chat.completions.create(model="sim-small?latency_ms=150", messages=USER_MESSAGES)
    assert time.monotonic() - started >= 0.15


async def test_tokens_per_s_paces_each_chunk(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    body = chat_body(stream=True, simulate={"tokens": 6, "tokens_per_s": 50})
    arrivals: list[float] = []
    started = time.monotonic()
    async with http.post(f"{sim.base_url}/chat/completions", json=body, headers=AUTH) as resp:
        async for line in resp.content:
            if line.startswith(b"data: {") and b'"content":"' in line:
                arrivals.append(time.monotonic())
    assert len(arrivals) == 7  # role chunk + 6 words
    # Six words at 50/s take at least 120 ms ...
    assert arrivals[-1] - started >= 0.115
    # ... and arrive spread out, i.e. each chunk is flushed when produced.
    assert arrivals[-1] - arrivals[1] >= 0.05


async def test_hang_then_client_timeout_counts_cancellation(
    client: openai.AsyncOpenAI, http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(
            model="sim-small?hang=1", messages=USER_MESSAGES, timeout=0.3
        )
    current = await wait_for_stats(http, sim, lambda s: s["cancelled"] == 1 and s["in_flight"] == 0)
    assert current["requests_by_model"] == {"sim-small": 1}


async def test_hang_detected_within_a_second(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    body = chat_body(stream=True, simulate={"hang": 1})
    request = asyncio.ensure_future(
        http.post(f"{sim.base_url}/chat/completions", json=body, headers=AUTH)
    )
    await wait_for_stats(http, sim, lambda s: s["in_flight"] == 1)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await wait_for_stats(http, sim, lambda s: s["cancelled"] == 1 and s["in_flight"] == 0)


async def test_reset_gives_connection_error(
    client: openai.AsyncOpenAI, http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="sim-small?reset=1", messages=USER_MESSAGES)
    with pytest.raises(aiohttp.ClientConnectionError):
        await post_json(http, f"{sim.base_url}/embeddings", {"model": "e?reset=1", "input": "x"})
    current = await stats(http, sim)
    assert current["cancelled"] == 0
    # The simulator keeps serving after dropping connections.
    result = await client.chat.completions.create(model="sim-small", messages=USER_MESSAGES)
    assert result.choices[0].message.content


async def test_truncate_after(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    body = chat_body(stream=True, simulate={"truncate_after": 3})
    received: list[bytes] = []
    async with http.post(f"{sim.base_url}/chat/completions", json=body, headers=AUTH) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await collect_lines(resp, received)
    events = [json.loads(line[6:]) for line in received if line.startswith(b"data: {")]
    assert len(events) == 4  # role chunk + 3 words, no finish chunk
    assert [e["choices"][0]["delta"].get("content") for e in events[1:]] == [
        "Simulated",
        " reply",
        " to:",
    ]
    assert all(e["choices"][0]["finish_reason"] is None for e in events)
    assert b"data: [DONE]\n" not in received


async def test_truncate_with_sdk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim-small?truncate_after=2", messages=USER_MESSAGES, stream=True
    )
    seen: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        await collect_content(stream, seen)
    assert "".join(seen) == "Simulated reply"


async def test_error_after(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim-small?error_after=4", messages=USER_MESSAGES, stream=True
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        await collect_content(stream, seen)
    assert "".join(seen) == "Simulated reply to: What"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "server_error"


async def test_error_after_raw_event(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    body = chat_body(stream=True, simulate={"error_after": 0})
    async with http.post(f"{sim.base_url}/chat/completions", json=body, headers=AUTH) as resp:
        text = await resp.text()
    events = text.strip().split("\n\n")
    assert len(events) == 2
    error = json.loads(events[1][len("data: ") :])
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert "[DONE]" not in text


async def test_stall_after(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    body = chat_body(stream=True, simulate={"stall_after": 2})
    async with http.post(f"{sim.base_url}/chat/completions", json=body, headers=AUTH) as resp:
        events = await read_events(resp, 3)
        assert [e["choices"][0]["delta"]["content"] for e in events] == ["", "Simulated", " reply"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(resp.content.readline(), 0.3)
        assert (await stats(http, sim))["in_flight"] == 1
        resp.close()
    await wait_for_stats(http, sim, lambda s: s["cancelled"] == 1 and s["in_flight"] == 0)


async def test_disconnect_mid_paced_stream(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    body = chat_body(stream=True, simulate={"tokens": 200, "tokens_per_s": 40})
    async with http.post(f"{sim.base_url}/chat/completions", json=body, headers=AUTH) as resp:
        await read_events(resp, 3)
        resp.close()
    await wait_for_stats(http, sim, lambda s: s["cancelled"] == 1 and s["in_flight"] == 0)


async def test_fail_times_per_key(
    client: openai.AsyncOpenAI, http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    model = "sim-small?fail_times=2&key=flaky&status=503"
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model=model, messages=USER_MESSAGES)
        assert caught.value.status_code == 503
    result = await client.chat.completions.create(model=model, messages=USER_MESSAGES)
    assert result.choices[0].finish_reason == "stop"
    # Another key has its own budget; the default status is 500.
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(
            model="sim-small?fail_times=1&key=other", messages=USER_MESSAGES
        )
    assert caught.value.status_code == 500
    # /sim/reset forgets the budgets (and the counters).
    async with http.post(f"{sim.root_url}/sim/reset") as resp:
        assert (await resp.json())["total_requests"] == 0
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model=model, messages=USER_MESSAGES)


async def test_sdk_retries_honour_retry_after(sim: RunningSimulator) -> None:
    retrying = openai.AsyncOpenAI(base_url=sim.base_url, api_key="k", max_retries=2)
    try:
        started = time.monotonic()
        result = await retrying.chat.completions.create(
            model="sim-small?fail_times=2&key=retry&status=429&retry_after=0.01",
            messages=USER_MESSAGES,
        )
        assert result.choices[0].message.content
        assert time.monotonic() - started < 0.5  # 10 ms waits, not the SDK's backoff
    finally:
        await retrying.close()
    assert sim.state.stats.by_status == {429: 2, 200: 1}


async def test_stats_counts(
    client: openai.AsyncOpenAI, http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    await client.chat.completions.create(model="sim-small", messages=USER_MESSAGES)
    await client.chat.completions.create(model="sim-large?tokens=1", messages=USER_MESSAGES)
    await client.embeddings.create(model="sim-embed", input="x")
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="sim-large?status=429", messages=USER_MESSAGES)
    current = await stats(http, sim)
    assert current == {
        "total_requests": 4,
        "in_flight": 0,
        "cancelled": 0,
        "requests_by_model": {"sim-small": 1, "sim-large": 2, "sim-embed": 1},
        "responses_by_status": {"200": 3, "429": 1},
    }


async def test_embeddings_honour_directives(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    body = {"model": "sim-embed", "input": "x", "simulate": {"status": 429, "retry_after": 1}}
    status, headers, _ = await post_json(http, f"{sim.base_url}/embeddings", body)
    assert status == 429
    assert headers["retry-after"] == "1"
