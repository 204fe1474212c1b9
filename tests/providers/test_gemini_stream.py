"""Conformance of the `gemini` stream parser, fed recorded streams split at awkward places."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from lockgate.errors import UpstreamServerError
from lockgate.providers.gemini import GeminiAdapter, GeminiStreamParser
from tests.providers.gemini_support import FIXTURES, KEY, ROOT

DONE = b"data: [DONE]\n\n"


def parser(include_usage: bool = False, n: int = 1) -> GeminiStreamParser:
    adapter = GeminiAdapter("gem", ROOT, KEY)
    body: dict[str, Any] = {"model": "smart", "messages": [], "stream": True, "n": n}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return adapter.stream_parser(body)


def recorded(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def feed_bytewise(stream: GeminiStreamParser, data: bytes) -> list[bytes]:
    events: list[bytes] = []
    for index in range(len(data)):
        events += stream.feed(data[index : index + 1])
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


def test_text_stream_split_one_byte_at_a_time() -> None:
    stream = parser(include_usage=True)
    events = feed_bytewise(stream, recorded("stream_text.sse"))
    assert stream.complete
    assert events[-1] == DONE
    parsed = chunks(events)
    assert text_of(parsed) == (
        "Elara found the backpack in her grandmother's attic, dusty and patched, and whatever "
        "she wished for appeared inside.\n"
    )
    assert parsed[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Elara"}
    assert {c["id"] for c in parsed} == {"chatcmpl-n4NHaK3fNJrsz7IPjcbZ-QM"}
    assert {c["model"] for c in parsed} == {"gemini-2.0-flash"}
    assert {c["object"] for c in parsed} == {"chat.completion.chunk"}
    finish = [c["choices"][0]["finish_reason"] for c in parsed if c["choices"]]
    assert finish[:-1] == [None] * (len(finish) - 1)
    assert finish[-1] == "stop"
    assert parsed[-2]["choices"][0]["delta"] == {}
    assert parsed[-1]["choices"] == []
    assert parsed[-1]["usage"]["prompt_tokens"] == 8
    assert parsed[-1]["usage"]["completion_tokens"] == 24
    assert all(c["usage"] is None for c in parsed[:-1])


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    stream = parser()
    parsed = chunks(stream.feed(recorded("stream_text.sse")))
    assert all(c["choices"] and "usage" not in c for c in parsed)
    assert stream.complete


@pytest.mark.parametrize("seed", range(5))
def test_random_splits_give_the_same_events(seed: int) -> None:
    data = recorded("stream_function_call.sse")
    whole = chunks(parser(include_usage=True).feed(data))
    rng = random.Random(seed)
    stream, events, start = parser(include_usage=True), [], 0
    while start < len(data):
        size = rng.randint(1, 40)
        events += stream.feed(data[start : start + size])
        start += size
    split = chunks(events)
    for chunk in (*whole, *split):
        chunk.pop("created")
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or []:
                call.pop("id")
    assert split == whole
    assert stream.complete


def test_streamed_function_calls_arrive_whole_with_indices() -> None:
    stream = parser(include_usage=True)
    parsed = chunks(feed_bytewise(stream, recorded("stream_function_call.sse")))
    assert text_of(parsed) == "I'll check both cities."  # the thought part is not content
    calls = [
        call
        for c in parsed
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert [(call["index"], call["function"]) for call in calls] == [
        (0, {"name": "get_weather", "arguments": '{"location":"Paris"}'}),
        (1, {"name": "get_weather", "arguments": '{"location":"London"}'}),
    ]
    assert all(call["id"].startswith("call_") and call["type"] == "function" for call in calls)
    assert calls[0]["extra_content"] == {"google": {"thought_signature": "EqQBCqEBAdHtim8"}}
    assert "extra_content" not in calls[1]
    finish = [c["choices"][0]["finish_reason"] for c in parsed if c["choices"]]
    assert finish[-1] == "tool_calls"
    assert parsed[-1]["usage"] == {
        "prompt_tokens": 52,
        "completion_tokens": 88,
        "total_tokens": 140,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 58},
    }
    assert stream.complete


def test_in_band_error_sets_the_failure_after_the_events_before_it() -> None:
    stream = parser()
    assert stream.failure is None
    events = feed_bytewise(stream, recorded("stream_error.sse"))
    assert text_of(chunks(events)).startswith("Elara found the backpack")
    assert DONE not in events
    assert not stream.complete
    failure = stream.failure
    assert failure is not None
    assert (failure.status, failure.code, failure.retryable) == (502, "upstream_error", True)
    assert "overloaded" in failure.message
    assert "'gem'" in failure.message
    assert stream.feed(b'data: {"candidates": []}\r\n\r\n') == []


def test_error_in_the_same_chunk_keeps_the_events_before_it() -> None:
    data = recorded("stream_error.sse")
    stream = parser()
    events = stream.feed(data + recorded("stream_text.sse"))
    assert len(chunks(events)) == 2  # the two text events; nothing after the error
    assert stream.failure is not None
    rate_limited = (
        b'data: {"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"}}\r\n\r\n'
    )
    limited = parser()
    assert limited.feed(rate_limited) == []
    assert limited.failure is not None
    assert (limited.failure.status, limited.failure.retryable) == (429, True)


def test_a_stream_cut_before_the_finish_is_incomplete() -> None:
    data = recorded("stream_text.sse")
    last = data.rindex(b"data: ")
    stream = parser()
    events = stream.feed(data[:last])
    assert text_of(chunks(events))
    assert not stream.complete
    stream.feed(data[last:-10])  # the final event, cut inside
    assert not stream.complete


def test_blocked_prompt_finishes_with_content_filter() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}}
    stream = parser(n=2)
    parsed = chunks(stream.feed(b"data: " + json.dumps(body).encode() + b"\r\n\r\n"))
    assert [(c["choices"][0]["index"], c["choices"][0]["finish_reason"]) for c in parsed] == [
        (0, None),
        (0, "content_filter"),
        (1, None),
        (1, "content_filter"),
    ]
    assert stream.complete


def test_several_candidates_complete_when_all_finished() -> None:
    def event(*candidates: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps({"candidates": list(candidates)}).encode() + b"\n\n"

    stream = parser(n=2)
    first = chunks(
        stream.feed(
            event(
                {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP"},
                {"content": {"parts": [{"text": "B"}]}, "index": 1},
            )
        )
    )
    assert [c["choices"][0]["index"] for c in first] == [0, 0, 1]
    assert not stream.complete
    last = stream.feed(
        event({"content": {"parts": [{"text": "C"}]}, "index": 1, "finishReason": "MAX_TOKENS"})
    )
    assert last[-1] == DONE
    assert chunks(last)[-1]["choices"][0]["finish_reason"] == "length"
    assert stream.complete


def test_an_event_that_is_not_json_fails_the_stream() -> None:
    with pytest.raises(UpstreamServerError, match="not valid JSON"):
        parser().feed(b"data: {oops\r\n\r\n")
