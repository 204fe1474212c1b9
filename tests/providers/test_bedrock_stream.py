"""The `bedrock` stream parser: binary ConverseStream frames split anywhere, CRCs, exceptions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lockgate.errors import UpstreamServerError
from lockgate.providers.bedrock import BedrockStreamParser
from lockgate.providers.bedrock.eventstream import EventStreamDecoder, EventStreamError
from lockgate.simulate.eventstream import event_message, exception_message
from tests.providers.bedrock_support import MODEL, adapter, corrupt_crc, frames

DONE = b"data: [DONE]\n\n"


def parser(include_usage: bool = False) -> BedrockStreamParser:
    body: dict[str, Any] = {"model": MODEL, "messages": [], "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return adapter().stream_parser(body)


def bytewise(stream: BedrockStreamParser, data: bytes) -> list[bytes]:
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
    events = bytewise(stream, frames("stream_text.json"))
    assert stream.complete
    assert stream.failure is None
    assert events[-1] == DONE
    parsed = chunks(events)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in parsed if c["choices"])
    assert text == "Hello! How can I help you today?"
    assert parsed[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len({(c["id"], c["created"], c["model"]) for c in parsed}) == 1
    assert parsed[0]["model"] == MODEL
    assert parsed[-2]["choices"][0]["finish_reason"] == "stop"
    assert parsed[-1]["choices"] == []
    assert parsed[-1]["usage"]["prompt_tokens"] == 12
    assert parsed[-1]["usage"]["completion_tokens"] == 10
    assert all(c["usage"] is None for c in parsed[:-1])


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    stream = parser()
    parsed = chunks(stream.feed(frames("stream_text.json")))
    assert stream.complete
    assert all("usage" not in c for c in parsed)
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"


def test_tool_use_stream() -> None:
    stream = parser()
    parsed = chunks(bytewise(stream, frames("stream_tool_use.json")))
    assert stream.complete
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in parsed
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0] == {
        "index": 0,
        "id": "tooluse_2SZKdVNjRuWdb0ydqmmPJA",
        "type": "function",
        "function": {"name": "top_song", "arguments": ""},
    }
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert json.loads(arguments) == {"sign": "WZPZ"}
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_json_mode_tool_streams_as_content() -> None:
    data = b"".join(
        [
            event_message("messageStart", {"role": "assistant"}),
            event_message("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"name": "json_response", "toolUseId": "t"}}}),
            event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"a": 1}'}}}),
            event_message("messageStop", {"stopReason": "tool_use"}),
            event_message("metadata", {"usage": {"inputTokens": 1, "outputTokens": 1}}),
        ]
    )  # fmt: skip
    parsed = chunks(parser().feed(data))
    assert parsed[1]["choices"][0]["delta"] == {"content": '{"a": 1}'}
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"


def test_exception_message_sets_failure_after_earlier_events() -> None:
    data = b"".join(
        [
            event_message("messageStart", {"role": "assistant"}),
            event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            exception_message("throttlingException", "Too many tokens, slow down."),
            event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "!"}}),
        ]
    )
    stream = parser()
    events = bytewise(stream, data)
    assert len(events) == 2
    assert not stream.complete
    assert stream.failure is not None
    assert stream.failure.status == 429
    assert stream.failure.code == "upstream_rate_limited"
    assert stream.failure.message == "Too many tokens, slow down."


def test_model_stream_error_is_a_retryable_5xx() -> None:
    stream = parser()
    stream.feed(exception_message("modelStreamErrorException", "Model failed mid-stream."))
    assert stream.failure is not None
    assert stream.failure.status == 502
    assert stream.failure.retryable
    assert "ModelStreamErrorException" in stream.failure.message


def test_bad_message_crc_raises() -> None:
    first = event_message("messageStart", {"role": "assistant"})
    second = event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
    stream = parser()
    assert len(stream.feed(first)) == 1
    with pytest.raises(UpstreamServerError, match="message CRC mismatch") as info:
        stream.feed(corrupt_crc(second))
    assert info.value.code == "upstream_invalid_response"


def test_bad_prelude_crc_raises() -> None:
    frame = bytearray(event_message("messageStart", {"role": "assistant"}))
    frame[9] ^= 0xFF
    with pytest.raises(EventStreamError, match="prelude CRC mismatch"):
        EventStreamDecoder().feed(bytes(frame))


def test_cut_stream_is_not_complete() -> None:
    data = frames("stream_text.json")
    stream = parser()
    stream.feed(data[:-10])
    assert not stream.complete
    assert stream.failure is None
