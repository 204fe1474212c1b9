"""Conformance of the `anthropic` stream parser, fed recorded streams split at awkward places."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from lockgate.errors import UpstreamServerError
from lockgate.providers.anthropic import AnthropicAdapter, AnthropicStreamParser

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
KEY = "sk-ant-api03-secret-key-9f8e7d"
DONE = b"data: [DONE]\n\n"


def parser(include_usage: bool = False) -> AnthropicStreamParser:
    adapter = AnthropicAdapter("claude", "https://api.anthropic.com", KEY)
    body: dict[str, Any] = {"model": "m", "messages": [], "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return adapter.stream_parser(body)


def recorded(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def feed_in_pieces(stream: AnthropicStreamParser, data: bytes, sizes: list[int]) -> list[bytes]:
    events: list[bytes] = []
    start = 0
    for size in sizes:
        events += stream.feed(data[start : start + size])
        start += size
    events += stream.feed(data[start:])
    return events


def chunks(events: list[bytes]) -> list[dict[str, Any]]:
    """The JSON chunks of canonical events (checking their framing), without `[DONE]`."""
    result = []
    for event in events:
        assert event.startswith(b"data: ")
        assert event.endswith(b"\n\n")
        assert event.count(b"\n\n") == 1
        if event != DONE:
            result.append(json.loads(event[6:]))
    return result


def text_of(parsed: list[dict[str, Any]]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in parsed if c.get("choices")
    )


def tool_calls_of(parsed: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in parsed:
        if not chunk.get("choices"):
            continue
        for delta in chunk["choices"][0]["delta"].get("tool_calls") or []:
            call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.get("id") or ""
            call["name"] += delta["function"].get("name") or ""
            call["arguments"] += delta["function"].get("arguments") or ""
    return calls


@pytest.mark.parametrize(
    "name",
    [
        "stream_text.sse",
        "stream_tool_use.sse",
        "stream_parallel_tools.sse",
        "stream_json_mode.sse",
        "stream_error.sse",
    ],
)
def test_byte_at_a_time_and_random_splits_give_the_same_events(name: str) -> None:
    data = recorded(name)
    whole = parser(include_usage=True).feed(data)
    one_byte = feed_in_pieces(parser(include_usage=True), data, [1] * len(data))
    assert [json.loads(e[6:]) for e in one_byte if e != DONE] == [
        json.loads(e[6:]) for e in whole if e != DONE
    ]
    rng = random.Random(name)
    for _ in range(20):
        sizes = [rng.randint(1, 40) for _ in range(len(data) // 10)]
        events = feed_in_pieces(parser(include_usage=True), data, sizes)
        assert len(events) == len(whole)
        assert text_of(chunks(events)) == text_of(chunks(whole))


def test_crlf_line_endings_are_understood() -> None:
    events = parser().feed(recorded("stream_text.sse").replace(b"\n", b"\r\n"))
    assert text_of(chunks(events)) == "Hello!"
    assert events[-1] == DONE


def test_text_stream() -> None:
    stream = parser()
    events = stream.feed(recorded("stream_text.sse"))
    parsed = chunks(events)
    assert stream.complete
    assert events[-1] == DONE
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in parsed} == {
        (
            "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
            "chat.completion.chunk",
            parsed[0]["created"],
            "claude-sonnet-4-5-20250929",
        )
    }
    assert parsed[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert text_of(parsed) == "Hello!"
    assert parsed[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert all("usage" not in c for c in parsed)


def test_complete_only_after_message_stop() -> None:
    data = recorded("stream_text.sse")
    cut = data.index(b"event: message_stop")
    stream = parser()
    events = stream.feed(data[:cut])
    assert not stream.complete
    assert DONE not in events
    assert stream.feed(data[cut:-1]) == []  # the event's blank line is not complete yet
    assert not stream.complete
    assert stream.feed(data[-1:]) == [DONE]
    assert stream.complete


def test_include_usage_adds_a_final_usage_chunk() -> None:
    stream = parser(include_usage=True)
    parsed = chunks(stream.feed(recorded("stream_parallel_tools.sse")))
    *body, last = parsed
    assert all(c["usage"] is None for c in body)
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 1020,
        "completion_tokens": 64,
        "total_tokens": 1084,
        "prompt_tokens_details": {"cached_tokens": 900},
    }


def test_tool_use_stream_reassembles_the_call() -> None:
    parsed = chunks(parser().feed(recorded("stream_tool_use.sse")))
    assert text_of(parsed) == "Okay, let's check the weather for San Francisco, CA:"
    calls = tool_calls_of(parsed)
    assert list(calls) == [0]  # block 1 is the first tool call
    assert calls[0]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "fahrenheit",
    }
    first = next(c for c in parsed if c["choices"][0]["delta"].get("tool_calls"))
    assert first["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_parallel_tool_calls_are_numbered_among_tool_calls_only() -> None:
    parsed = chunks(parser().feed(recorded("stream_parallel_tools.sse")))
    calls = tool_calls_of(parsed)
    assert {i: (c["name"], json.loads(c["arguments"])) for i, c in calls.items()} == {
        0: ("get_weather", {"location": "Oslo"}),
        1: ("get_time", {"zone": "CET"}),
    }


def test_json_mode_stream_is_content() -> None:
    parsed = chunks(parser().feed(recorded("stream_json_mode.sse")))
    assert json.loads(text_of(parsed)) == {"score": 4, "label": "good"}
    assert tool_calls_of(parsed) == {}
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"


def test_error_event_sets_failure_and_the_stream_ends_incomplete() -> None:
    stream = parser()
    events = stream.feed(recorded("stream_error.sse"))
    assert not stream.complete
    assert DONE not in events
    assert text_of(chunks(events)) == "Once upon"  # what came before the error is kept
    assert stream.failure is not None
    assert stream.failure.code == "upstream_overloaded"
    assert stream.failure.retryable
    assert "Overloaded" in stream.failure.message
    # Anything after the error is ignored.
    assert stream.feed(recorded("stream_text.sse")) == []
    assert not stream.complete


def test_unknown_events_and_blocks_are_skipped() -> None:
    data = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"c"}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"thinking","thinking":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"thinking_delta","thinking":"hmm"}}\n\n'
        b'event: future_event\ndata: {"type":"future_event"}\n\n'
        b": a comment\n\n"
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    stream = parser()
    events = stream.feed(data)
    assert text_of(chunks(events)) == ""
    assert events[-1] == DONE
    assert stream.complete


def test_event_that_is_not_json_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamServerError):
        parser().feed(b"event: message_start\ndata: {not json\n\n")


def test_api_key_is_scrubbed_from_in_band_errors() -> None:
    error = {"type": "error", "error": {"type": "api_error", "message": f"leaked {KEY}"}}
    stream = parser()
    assert stream.feed(b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n") == []
    assert stream.failure is not None
    assert KEY not in stream.failure.message
    assert stream.failure.code == "upstream_error"
