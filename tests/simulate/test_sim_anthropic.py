"""The simulator's Anthropic Messages API, through the official anthropic SDK and raw HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from lockgate.simulate.server import RunningSimulator

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
USER = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-sim", "max_tokens": 256, "messages": USER, **extra}


@pytest.fixture
async def claude(sim: RunningSimulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=sim.root_url, api_key="sk-ant-test", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


async def post(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    payload: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with http.post(
        f"{sim.root_url}/v1/messages", json=payload, headers=HEADERS if headers is None else headers
    ) as resp:
        return resp.status, await resp.json(content_type=None)


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs, checking each event's framing and that the names agree."""
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ")
        assert data_line.startswith("data: ")
        name, data = name_line[7:], json.loads(data_line[6:])
        assert data["type"] == name
        events.append((name, data))
    return events


async def test_text_message_shape(claude: anthropic.AsyncAnthropic) -> None:
    raw = await claude.messages.with_raw_response.create(
        model="claude-sim",
        max_tokens=256,
        messages=USER,  # type: ignore[arg-type]
    )
    message = await raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", "claude-sim")
    [block] = message.content
    assert block.type == "text"
    assert block.text.startswith("Simulated reply to: What is the capital")
    assert len(block.text.split(" ")) == 20
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.input_tokens == 11
    assert message.usage.output_tokens == 20


async def test_stream_events_come_in_anthropics_order(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    async with http.post(
        f"{sim.root_url}/v1/messages",
        json=body(stream=True, simulate={"tokens": 3}),
        headers=HEADERS,
    ) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        events = sse_events(await resp.text())
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["content"] == []
    assert start["stop_reason"] is None
    assert start["usage"]["input_tokens"] == 11
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert deltas == [
        {"type": "text_delta", "text": "Simulated"},
        {"type": "text_delta", "text": " reply"},
        {"type": "text_delta", "text": " to:"},
    ]
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 3},
    }


async def test_sdk_stream_accumulates_the_message(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
        model="claude-sim?tokens=6",
        max_tokens=256,
        messages=USER,  # type: ignore[arg-type]
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert len(text.split(" ")) == 6
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.usage.output_tokens == 6


async def test_forced_tool_use(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(
        model="claude-sim",
        max_tokens=256,
        messages=USER,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    [block] = message.content
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    assert (block.name, block.input) == ("get_weather", {"city": "example"})
    assert message.stop_reason == "tool_use"


async def test_streamed_tool_use_reassembles(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
        model="claude-sim?tool_call=1",
        max_tokens=256,
        messages=USER,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
    ) as stream:
        fragments = [
            event.delta.partial_json
            async for event in stream
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
        ]
        final = await stream.get_final_message()
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"city": "example"}
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"city": "example"}
    assert final.stop_reason == "tool_use"


async def test_tool_result_round_trip(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(
        model="claude-sim",
        max_tokens=256,
        system="Be brief.",
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3 degrees"},
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert message.content[0].type == "text"
    assert "And tomorrow?" in message.content[0].text


@pytest.mark.parametrize(
    ("fields", "stop_reason", "sequence", "words"),
    [
        ({"max_tokens": 4}, "max_tokens", None, 4),
        ({"stop_sequences": ["capital"]}, "stop_sequence", "capital", 6),
    ],
)
async def test_stop_reasons(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    fields: dict[str, Any],
    stop_reason: str,
    sequence: str | None,
    words: int,
) -> None:
    status, message = await post(http, sim, body(**fields))
    assert status == 200
    assert (message["stop_reason"], message["stop_sequence"]) == (stop_reason, sequence)
    assert len(message["content"][0]["text"].split()) == words


async def test_images_are_accepted(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(
        model="claude-sim",
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                ],
            }
        ],
    )
    assert message.usage.input_tokens == 4 + 3 + 2 * 85


async def test_echo_shows_what_was_received(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    status, message = await post(http, sim, body(), {**HEADERS, "x-sim-echo-headers": "1"})
    assert status == 200
    seen = message["simulator"]
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == "sk-ant-test"
    assert seen["headers"]["anthropic-version"] == "2023-06-01"
    assert seen["body"] == body()


@pytest.mark.parametrize(
    ("payload", "headers", "status", "kind", "message"),
    [
        (body(), {"anthropic-version": "2023-06-01"}, 401, "authentication_error", "x-api-key"),
        (body(), {"x-api-key": "k"}, 400, "invalid_request_error", "anthropic-version"),
        (body(n=2), None, 400, "invalid_request_error", "n: Extra inputs are not permitted"),
        (
            {"model": "claude-sim", "messages": USER},
            None,
            400,
            "invalid_request_error",
            "max_tokens: Field required",
        ),
        (
            body(messages=[{"role": "system", "content": "x"}]),
            None,
            400,
            "invalid_request_error",
            "messages.0.role",
        ),
        (body(temperature=1.5), None, 400, "invalid_request_error", "temperature"),
        (
            body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
            None,
            400,
            "invalid_request_error",
            "must be non-empty",
        ),
        (
            body(
                messages=[
                    *USER,
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                    },
                    {"role": "user", "content": "no result here"},
                ]
            ),
            None,
            400,
            "invalid_request_error",
            "`tool_use` ids were found without `tool_result` blocks immediately after: t1",
        ),
        (body(metadata={"team": "x"}), None, 400, "invalid_request_error", "metadata.team"),
        (
            body(model="claude-sim?nope=1"),
            None,
            400,
            "invalid_request_error",
            "Invalid simulator directive 'nope'",
        ),
    ],
)
async def test_invalid_requests_get_anthropic_errors(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    payload: dict[str, Any],
    headers: dict[str, str] | None,
    status: int,
    kind: str,
    message: str,
) -> None:
    got_status, error = await post(http, sim, payload, headers)
    assert got_status == status
    assert set(error) == {"type", "error", "request_id"}
    assert error["type"] == "error"
    assert error["error"]["type"] == kind
    assert message in error["error"]["message"]


async def test_echo_requests_are_logged_streaming_too(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    headers = {**HEADERS, "x-sim-echo-headers": "1"}
    async with http.post(f"{sim.root_url}/v1/messages", json=body(stream=True), headers=headers):
        pass
    await post(http, sim, body())  # no echo asked: not logged
    async with http.get(f"{sim.root_url}/sim/echoes") as resp:
        [echo] = await resp.json()
    assert echo["path"] == "/v1/messages"
    assert echo["body"] == body(stream=True)
    assert echo["headers"]["x-api-key"] == "sk-ant-test"
    async with (
        http.post(f"{sim.root_url}/sim/reset"),
        http.get(f"{sim.root_url}/sim/echoes") as resp,
    ):
        assert await resp.json() == []
