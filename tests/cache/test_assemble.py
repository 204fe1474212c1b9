"""Assembling streams back into cacheable answers: replayed streams, the simulator's real streams,
and streams that must not be cached (cut short, failed, too large)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from lockgate.cache.assemble import AnthropicStreamAssembler, OpenAIStreamAssembler
from lockgate.cache.replay import anthropic_stream, openai_stream
from lockgate.providers.openai import OpenAIStreamParser
from lockgate.simulate.server import RunningSimulator
from tests.cache.test_replay import ANTHROPIC_BODIES, OPENAI_BODIES, USER

OPENAI_AUTH = {"authorization": "Bearer k"}
ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
WEATHER_FUNCTION = {
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}
ERROR_EVENT = (
    b'data: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}\n\n'
)
ANTHROPIC_ERROR = (
    b"event: error\n"
    b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)


def openai_semantics(body: bytes | dict[str, Any]) -> dict[str, Any]:
    """Same content, tool calls, finish reasons and usage; logprobs and annotations aside."""
    data = orjson.loads(body) if isinstance(body, bytes) else body
    choices = []
    for choice in data["choices"]:
        message = choice["message"]
        calls = [
            (c["id"], c["type"], c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls") or ()
        ]
        choices.append(
            {
                "index": choice["index"],
                "finish_reason": choice["finish_reason"],
                "role": message["role"],
                "content": message.get("content"),
                "refusal": message.get("refusal") or None,
                "tool_calls": calls,
            }
        )
    return {
        "id": data["id"],
        "object": data["object"],
        "created": data["created"],
        "model": data["model"],
        "system_fingerprint": data.get("system_fingerprint"),
        "usage": data.get("usage"),
        "choices": choices,
    }


def anthropic_semantics(body: bytes | dict[str, Any]) -> dict[str, Any]:
    data = orjson.loads(body) if isinstance(body, bytes) else body
    return {key: data.get(key) for key in ("id", "type", "role", "model", "content", "usage")} | {
        "stop_reason": data.get("stop_reason"),
        "stop_sequence": data.get("stop_sequence"),
    }


def groups(events: list[bytes], size: int) -> Iterator[bytes]:
    """Relayed blocks of `size` complete events each."""
    for start in range(0, len(events), size):
        yield b"".join(events[start : start + size])


def assemble_openai(blocks: Iterator[bytes] | list[bytes], **options: Any) -> bytes | None:
    assembler = OpenAIStreamAssembler(**options)
    for block in blocks:
        assembler.feed(block)
    return assembler.result()


def assemble_anthropic(blocks: Iterator[bytes] | list[bytes], **options: Any) -> bytes | None:
    assembler = AnthropicStreamAssembler(**options)
    for block in blocks:
        assembler.feed(block)
    return assembler.result()


# --- round trips: replay(body) -> assemble == body ---------------------------------------------


@pytest.mark.parametrize("name", sorted(OPENAI_BODIES))
@pytest.mark.parametrize("block_size", [1, 3, 1000])
def test_openai_round_trip(name: str, block_size: int) -> None:
    body = OPENAI_BODIES[name]
    events = openai_stream(orjson.dumps(body), include_usage=True)
    result = assemble_openai(groups(events, block_size))
    assert result is not None
    assert openai_semantics(result) == openai_semantics(body)
    ChatCompletion.model_validate_json(result)  # the SDK's own type accepts it


def test_openai_round_trip_without_usage() -> None:
    body = OPENAI_BODIES["tool_calls"]
    result = assemble_openai(openai_stream(orjson.dumps(body), include_usage=False))
    assert result is not None
    assert "usage" not in orjson.loads(result)
    assert openai_semantics(result) == openai_semantics(body) | {"usage": None}


def test_openai_body_shape() -> None:
    body = OPENAI_BODIES["tool_calls"]
    result = orjson.loads(assemble_openai(openai_stream(orjson.dumps(body), True)) or b"null")
    assert list(result) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "service_tier",
        "system_fingerprint",
    ]
    [choice] = result["choices"]
    assert choice["logprobs"] is None
    assert choice["message"]["content"] is None  # only tool calls
    assert choice["message"]["refusal"] is None
    refusal = OPENAI_BODIES["refusal"]
    result = orjson.loads(assemble_openai(openai_stream(orjson.dumps(refusal), True)) or b"null")
    assert result["choices"][0]["message"]["content"] is None
    assert result["choices"][0]["message"]["refusal"] == refusal["choices"][0]["message"]["refusal"]


@pytest.mark.parametrize("name", sorted(ANTHROPIC_BODIES))
@pytest.mark.parametrize("block_size", [1, 4, 1000])
def test_anthropic_round_trip(name: str, block_size: int) -> None:
    body = ANTHROPIC_BODIES[name]
    result = assemble_anthropic(groups(anthropic_stream(orjson.dumps(body)), block_size))
    assert result is not None
    assert anthropic_semantics(result) == anthropic_semantics(body)
    Message.model_validate_json(result)


def test_wire_variants_are_read() -> None:
    """`data:` without a space, comments, CRLF line ends: all valid SSE."""
    events = openai_stream(orjson.dumps(OPENAI_BODIES["text"]), include_usage=True)
    variant = [b": keep-alive\r\n\r\n"] + [
        event.replace(b"data: ", b"data:").replace(b"\n", b"\r\n") for event in events
    ]
    result = assemble_openai(variant)
    assert result is not None
    assert openai_semantics(result) == openai_semantics(OPENAI_BODIES["text"])


# --- the simulator's real streams --------------------------------------------------------------


async def relay(resp: aiohttp.ClientResponse) -> list[bytes]:
    """The blocks the gateway relays: its OpenAI stream parser over small, arbitrary reads."""
    parser = OpenAIStreamParser("sim", lambda text: text)
    blocks: list[bytes] = []
    async for data in resp.content.iter_chunked(97):
        blocks.extend(parser.feed(data))
    assert parser.complete
    return blocks


async def simulator_pair(
    simulator: RunningSimulator, request: dict[str, Any]
) -> tuple[bytes | None, dict[str, Any]]:
    """(the assembled stream, the non-streaming answer) for the same request."""
    url = f"{simulator.base_url}/chat/completions"
    async with aiohttp.ClientSession(headers=OPENAI_AUTH) as http:
        streamed = {**request, "stream": True, "stream_options": {"include_usage": True}}
        async with http.post(url, json=streamed) as resp:
            assert resp.status == 200
            assert resp.headers["content-type"] == "text/event-stream"
            blocks = await relay(resp)
        async with http.post(url, json=request) as resp:
            assert resp.status == 200
            answer = orjson.loads(await resp.read())
    return assemble_openai(blocks), answer


def without_ids(semantics: dict[str, Any]) -> dict[str, Any]:
    """Ids and timestamps differ between two requests; tool-call ids are random."""
    choices = [
        {**choice, "tool_calls": [call[1:] for call in choice["tool_calls"]]}
        for choice in semantics["choices"]
    ]
    return {**semantics, "id": None, "created": None, "choices": choices}


async def test_simulator_text_stream_assembles_like_its_answer(
    simulator: RunningSimulator,
) -> None:
    request = {"model": "sim-small", "messages": USER, "n": 2, "simulate": {"tokens": 60}}
    result, answer = await simulator_pair(simulator, request)
    assert result is not None
    assert without_ids(openai_semantics(result)) == without_ids(openai_semantics(answer))
    ChatCompletion.model_validate_json(result)
    assert orjson.loads(result)["choices"][1]["message"]["content"].count(" ") == 59


async def test_simulator_tool_call_stream_assembles_like_its_answer(
    simulator: RunningSimulator,
) -> None:
    request = {
        "model": "sim-small",
        "messages": USER,
        "tools": [{"type": "function", "function": WEATHER_FUNCTION}],
        "tool_choice": "required",
    }
    result, answer = await simulator_pair(simulator, request)
    assert result is not None
    assembled = openai_semantics(result)
    assert without_ids(assembled) == without_ids(openai_semantics(answer))
    [choice] = assembled["choices"]
    [(call_id, _, name, arguments)] = choice["tool_calls"]
    assert call_id
    assert name == "get_weather"
    assert set(orjson.loads(arguments)) == {"city", "days"}
    assert choice["content"] is None
    assert choice["finish_reason"] == "tool_calls"


async def test_simulator_anthropic_streams_assemble_like_its_answers(
    simulator: RunningSimulator,
) -> None:
    url = f"{simulator.root_url}/v1/messages"
    weather = {"name": "get_weather", "input_schema": WEATHER_FUNCTION["parameters"]}
    requests = [
        {"model": "claude-sim", "max_tokens": 256, "messages": USER},
        {
            "model": "claude-sim?tool_call=1",
            "max_tokens": 256,
            "messages": USER,
            "tools": [weather],
        },
    ]
    async with aiohttp.ClientSession(headers=ANTHROPIC_HEADERS) as http:
        for request in requests:
            async with http.post(url, json={**request, "stream": True}) as resp:
                assert resp.status == 200
                raw = await resp.read()
            async with http.post(url, json=request) as resp:
                assert resp.status == 200
                answer = orjson.loads(await resp.read())
            events = [event + b"\n\n" for event in raw.split(b"\n\n") if event]
            result = assemble_anthropic(events)
            assert result is not None
            assembled = anthropic_semantics(result)
            expected = anthropic_semantics(answer)
            for semantics in (assembled, expected):
                semantics["id"] = None
                for block in semantics["content"]:
                    block.pop("id", None)  # tool_use ids are random
            assert assembled == expected
            Message.model_validate_json(result)


# --- not cacheable -----------------------------------------------------------------------------


def test_openai_stream_cut_before_done_is_none() -> None:
    events = openai_stream(orjson.dumps(OPENAI_BODIES["text"]), include_usage=True)
    assert assemble_openai(events[:-1]) is None  # everything but [DONE]
    assert assemble_openai(events) is not None


def test_openai_choice_without_finish_reason_is_none() -> None:
    events = openai_stream(orjson.dumps(OPENAI_BODIES["n2"]), include_usage=False)
    finishing = [e for e in events if b'"finish_reason":"tool_calls"' in e]
    assert len(finishing) == 1
    assert assemble_openai([e for e in events if e not in finishing]) is None


def test_openai_error_event_is_none() -> None:
    events = openai_stream(orjson.dumps(OPENAI_BODIES["text"]), include_usage=False)
    # Even with everything else (and [DONE]) present, an in-band error spoils the answer.
    assert assemble_openai([*events[:2], ERROR_EVENT, *events[2:]]) is None
    assert assemble_openai([*events[:-1], ERROR_EVENT + events[-1]]) is None


async def test_simulator_stream_errors_and_cuts_are_none(simulator: RunningSimulator) -> None:
    url = f"{simulator.base_url}/chat/completions"
    async with aiohttp.ClientSession(headers=OPENAI_AUTH) as http:
        for directive in ({"error_after": 3}, {"truncate_after": 3}):
            request = {"model": "sim-small", "messages": USER, "stream": True}
            assembler = OpenAIStreamAssembler()
            async with http.post(url, json={**request, "simulate": directive}) as resp:
                try:
                    async for data in resp.content.iter_chunked(1 << 16):
                        assembler.feed(data)
                except aiohttp.ClientPayloadError:
                    pass  # the truncation
            assert assembler.result() is None, directive


def test_openai_oversize_is_none() -> None:
    body = OPENAI_BODIES["unicode"]
    content = body["choices"][0]["message"]["content"]
    size = len(content.encode())
    events = openai_stream(orjson.dumps(body), include_usage=True)
    assert assemble_openai(events, max_bytes=size) is not None  # counted in UTF-8 bytes
    assert assemble_openai(events, max_bytes=size - 1) is None
    tools = openai_stream(orjson.dumps(OPENAI_BODIES["tool_calls"]), include_usage=True)
    assert assemble_openai(tools, max_bytes=50) is None  # arguments count too
    assert assemble_openai(openai_stream(orjson.dumps(OPENAI_BODIES["long"]), True)) is not None
    long = openai_stream(orjson.dumps(OPENAI_BODIES["long"]), True)
    assert assemble_openai(long, max_bytes=64 * 1024) is None


def test_openai_gives_up_for_good() -> None:
    """After giving up, later events (even a complete stream) change nothing."""
    events = openai_stream(orjson.dumps(OPENAI_BODIES["long"]), include_usage=True)
    assembler = OpenAIStreamAssembler(max_bytes=1000)
    for event in events:
        assembler.feed(event)
    small = openai_stream(orjson.dumps(OPENAI_BODIES["text"]), include_usage=True)
    assembler.feed(b"".join(small))
    assert assembler.result() is None


def test_anthropic_without_message_stop_is_none() -> None:
    events = anthropic_stream(orjson.dumps(ANTHROPIC_BODIES["tool_use"]))
    assert events[-1].startswith(b"event: message_stop")
    assert assemble_anthropic(events[:-1]) is None


def test_anthropic_error_event_is_none() -> None:
    events = anthropic_stream(orjson.dumps(ANTHROPIC_BODIES["text"]))
    assert assemble_anthropic([*events[:4], ANTHROPIC_ERROR, *events[4:]]) is None


def test_anthropic_broken_streams_are_none() -> None:
    events = anthropic_stream(orjson.dumps(ANTHROPIC_BODIES["tool_use"]))
    # A tool input cut mid-JSON (a fragment lost) does not parse: not cacheable.
    fragments = [e for e in events if b'"partial_json":"{' in e]
    assert assemble_anthropic([e for e in events if e not in fragments]) is None
    # A delta for a block that never started.
    orphan = (
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":9,"delta":{"type":"text_delta","text":"x"}}'
        b"\n\n"
    )
    assert assemble_anthropic([*events[:-1], orphan, events[-1]]) is None


def test_anthropic_oversize_is_none() -> None:
    body = ANTHROPIC_BODIES["thinking"]
    texts = [body["content"][0]["thinking"], body["content"][2]["text"]]
    size = sum(len(text.encode()) for text in texts)
    events = anthropic_stream(orjson.dumps(body))
    assert assemble_anthropic(events, max_bytes=size) is not None
    assert assemble_anthropic(events, max_bytes=size - 1) is None
    long = anthropic_stream(orjson.dumps(ANTHROPIC_BODIES["long"]))
    assert assemble_anthropic(long, max_bytes=64 * 1024) is None
    assert assemble_anthropic(long) is not None


def test_anthropic_usage_merges_start_and_delta() -> None:
    """message_delta's counts replace message_start's; what it omits, message_start keeps."""
    body = ANTHROPIC_BODIES["text"]
    events = anthropic_stream(orjson.dumps(body))
    start = orjson.loads(events[0].split(b"\n")[1][6:])
    assert start["message"]["usage"]["output_tokens"] == 1
    result = orjson.loads(assemble_anthropic(events) or b"null")
    assert result["usage"] == body["usage"]
    assert result["usage"]["cache_creation"] == {
        "ephemeral_5m_input_tokens": 7,
        "ephemeral_1h_input_tokens": 0,
    }
