"""The `cohere` stream parser: SSE split one byte at a time, tool calls, in-band errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lockgate.errors import UpstreamServerError
from lockgate.providers.cohere import CohereStreamParser
from tests.providers.cohere_support import KEY, MODEL, adapter, raw

DONE = b"data: [DONE]\n\n"


def parser(include_usage: bool = False) -> CohereStreamParser:
    body: dict[str, Any] = {"model": MODEL, "messages": [], "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return adapter().stream_parser(body)


def bytewise(stream: CohereStreamParser, data: bytes) -> list[bytes]:
    events: list[bytes] = []
    for index in range(len(data)):
        events += stream.feed(data[index : index + 1])
    return events


def chunks(events: list[bytes]) -> list[dict[str, Any]]:
    result = []
    for event in events:
        assert event.startswith(b"data: ")
        assert event.endswith(b"\n\n")
        if event != DONE:
            result.append(json.loads(event[6:]))
    return result


def test_text_stream_split_one_byte_at_a_time() -> None:
    stream = parser(include_usage=True)
    events = bytewise(stream, raw("stream_text.sse"))
    assert stream.complete
    assert stream.failure is None
    assert events[-1] == DONE
    parsed = chunks(events)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in parsed if c["choices"])
    assert text == "A large language model (LLM) is a type of neural network."
    assert parsed[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {(c["id"], c["created"], c["model"]) for c in parsed} == {
        ("29f14a5a-11de-4cae-9800-25e4747408ed", parsed[0]["created"], MODEL)
    }
    assert parsed[-2]["choices"][0]["finish_reason"] == "stop"
    assert parsed[-1]["choices"] == []
    assert parsed[-1]["usage"]["prompt_tokens"] == 69
    assert parsed[-1]["usage"]["completion_tokens"] == 12
    assert all(c["usage"] is None for c in parsed[:-1])


def test_not_complete_before_message_end() -> None:
    data = raw("stream_text.sse")
    stream = parser()
    stream.feed(data[: data.index(b"event: message-end")])
    assert not stream.complete
    parsed = chunks(stream.feed(data[data.index(b"event: message-end") :]))
    assert stream.complete
    assert all("usage" not in c for c in parsed)


def test_parallel_tool_calls_stream() -> None:
    stream = parser()
    parsed = chunks(bytewise(stream, raw("stream_tool_calls.sse")))
    assert stream.complete
    deltas = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in parsed
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert deltas[0] == {
        "index": 0,
        "id": "get_weather_p1t92w7gfgq7",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    arguments: dict[int, str] = {}
    for delta in deltas:
        arguments[delta["index"]] = (
            arguments.get(delta["index"], "") + delta["function"]["arguments"]
        )
    assert {i: json.loads(a) for i, a in arguments.items()} == {
        0: {"location": "Madrid"},
        1: {"location": "Brasilia"},
    }
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"
    contents = [c["choices"][0]["delta"].get("content") for c in parsed]
    assert contents[0] == ""  # the role chunk; the tool plan is not passed on
    assert not any(contents[1:])


def test_error_finish_reason_sets_failure_after_the_text_before_it() -> None:
    stream = parser(include_usage=True)
    parsed = chunks(bytewise(stream, raw("stream_error.sse")))
    assert not stream.complete
    assert isinstance(stream.failure, UpstreamServerError)
    assert stream.failure.retryable
    assert "internal error while generating" in stream.failure.message
    assert KEY not in stream.failure.message
    assert [c["choices"][0]["delta"].get("content") for c in parsed] == ["", "It is currently"]
    assert stream.feed(b"event: message-end\ndata: {}\n\n") == []


def test_unreadable_event_is_a_502() -> None:
    with pytest.raises(UpstreamServerError):
        parser().feed(b"event: content-delta\ndata: {not json\n\n")
