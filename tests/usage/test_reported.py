"""Usage read from streams as they go by, and hidden from clients that did not ask for it."""

from __future__ import annotations

import json

import orjson
import pytest

from lockgate.usage.reported import StreamMeter, Usage, hide_usage


def chunk(content: str | None, *, usage: object = None, finish: str | None = None) -> bytes:
    """An OpenAI chunk event as a provider streams it when asked for `include_usage`."""
    choices = (
        []
        if content is None
        else [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    )
    body = {"id": "c1", "object": "chat.completion.chunk", "choices": choices, "usage": usage}
    return b"data: " + orjson.dumps(body) + b"\n\n"


USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
DONE = b"data: [DONE]\n\n"


def events_of(block: bytes) -> list[object]:
    payloads = [event.removeprefix(b"data: ") for event in block.split(b"\n\n") if event]
    return [p.decode() if p == b"[DONE]" else json.loads(p) for p in payloads]


def test_a_client_that_did_not_ask_sees_no_usage_field_and_no_usage_chunk() -> None:
    block = chunk("Hel") + chunk("lo", finish="stop") + chunk(None, usage=USAGE) + DONE

    shown = hide_usage(block)

    assert b"usage" not in shown
    assert events_of(shown) == [
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
        },
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}],
        },
        "[DONE]",
    ]
    assert shown.endswith(b"\n\n")


def test_usage_on_a_chunk_with_content_goes_and_the_content_stays() -> None:
    block = chunk("a") + chunk("b", usage=USAGE, finish="stop") + DONE

    shown = events_of(hide_usage(block))

    assert [event["choices"][0]["delta"] for event in shown[:2]] == [  # type: ignore[index]
        {"content": "a"},
        {"content": "b"},
    ]
    assert all("usage" not in event for event in shown[:2])  # type: ignore[operator]
    assert shown[2] == "[DONE]"


def test_usage_written_with_spaces_is_hidden_too() -> None:
    spaced = json.dumps({"id": "c1", "choices": [], "usage": USAGE}).encode()
    block = chunk("x") + b"data: " + spaced + b"\n\n" + DONE

    shown = hide_usage(block)

    assert b"usage" not in shown
    assert len(events_of(shown)) == 2


def test_a_block_that_is_only_the_usage_chunk_becomes_nothing() -> None:
    assert hide_usage(chunk(None, usage=USAGE)) == b""
    assert hide_usage(chunk(None, usage=USAGE) + DONE) == DONE


def test_a_block_without_usage_passes_unchanged() -> None:
    block = b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'

    assert hide_usage(block) == block


def test_usage_fields_written_with_spaces_are_hidden_from_every_chunk() -> None:
    chunks = [
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": t}}], "usage": None}
        for t in "ab"
    ]
    block = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    block += (
        b"data: "
        + json.dumps({"id": "c1", "choices": [], "usage": USAGE}).encode()
        + b"\n\n"
        + DONE
    )

    shown = hide_usage(block)

    assert b"usage" not in shown
    assert [event["choices"][0]["delta"]["content"] for event in events_of(shown)[:2]] == ["a", "b"]  # type: ignore[index]
    assert events_of(shown)[2:] == ["[DONE]"]


def test_the_word_usage_in_an_answer_is_left_alone() -> None:
    block = chunk('the "usage" of the word') + chunk('"usage":{') + DONE

    shown = events_of(hide_usage(block))

    assert [event["choices"][0]["delta"]["content"] for event in shown[:2]] == [  # type: ignore[index]
        'the "usage" of the word',
        '"usage":{',
    ]
    assert shown[2] == "[DONE]"


def test_blank_lines_around_a_removed_usage_chunk_leave_nothing() -> None:
    assert hide_usage(b"\n\n" + chunk(None, usage=USAGE)) == b""


def test_the_meter_reads_openai_usage_from_the_last_chunk() -> None:
    meter = StreamMeter("openai")
    meter.feed_head(chunk("Hel"))
    meter.feed(chunk("lo"))
    meter.feed(chunk(None, usage={**USAGE, "prompt_tokens_details": {"cached_tokens": 4}}))
    meter.feed(DONE)

    assert meter.usage(input_estimate=99) == Usage(12, 3, cached_tokens=4)


def test_the_meter_reads_a_stream_that_came_in_one_block() -> None:
    meter = StreamMeter("openai")
    meter.feed_head(chunk("Hel") + chunk("lo") + chunk(None, usage=USAGE) + DONE)

    assert meter.usage(input_estimate=99) == Usage(12, 3)


def sse_json(value: object, spaced: bool) -> bytes:
    """JSON as providers write it: compact, or with spaces as Python's json module does."""
    return json.dumps(value).encode() if spaced else orjson.dumps(value)


@pytest.mark.parametrize("start_spaced", [True, False])
@pytest.mark.parametrize("delta_spaced", [True, False])
def test_the_meter_reads_anthropic_start_and_delta_in_order_whatever_their_spacing(
    start_spaced: bool, delta_spaced: bool
) -> None:
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 7, "output_tokens": 1}}}
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 5},
    }
    text = b'{"type":"content_block_delta","delta":{"type":"text_delta","text":"hi"}}'
    block = (
        b"event: message_start\ndata: " + sse_json(start, start_spaced) + b"\n\n"
        b"event: content_block_delta\ndata: " + text + b"\n\n"
        b"event: message_delta\ndata: " + sse_json(delta, delta_spaced) + b"\n\n"
    )
    meter = StreamMeter("anthropic")
    meter.feed_head(block)

    assert meter.usage(input_estimate=99) == Usage(7, 5)


def test_the_meter_reads_data_lines_without_a_space_and_skips_other_lines() -> None:
    usage = orjson.dumps({"choices": [], "usage": USAGE})
    block = chunk("hi") + b': comment "usage":{"prompt_tokens":1}\n\ndata:' + usage + b"\n\n"
    meter = StreamMeter("openai")
    meter.feed_head(block)

    assert meter.usage(input_estimate=99) == Usage(12, 3)


def test_without_reported_usage_the_meter_estimates_and_says_so() -> None:
    meter = StreamMeter("openai")
    meter.feed_head(chunk("a") + chunk("b"))
    meter.feed(chunk("c") + DONE)

    usage = meter.usage(input_estimate=20)

    # An estimate, flagged as one: a token per `data:` event ([DONE] counts as one too).
    assert usage == Usage(20, 4, reported=False)
