"""Usage read from streams as they go by, and hidden from clients that did not ask for it."""

from __future__ import annotations

import json

import orjson

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

    assert hide_usage(block) is block


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


def test_the_meter_reads_anthropic_start_and_delta_in_order_whatever_their_spacing() -> None:
    start = json.dumps(  # spaced, as Python's json writes it
        {"type": "message_start", "message": {"usage": {"input_tokens": 7, "output_tokens": 1}}}
    )
    delta = (
        b'{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}'
    )
    text = b'{"type":"content_block_delta","delta":{"type":"text_delta","text":"hi"}}'
    block = (
        b"event: message_start\ndata: " + start.encode() + b"\n\n"
        b"event: content_block_delta\ndata: " + text + b"\n\n"
        b"event: message_delta\ndata: " + delta + b"\n\n"
    )
    meter = StreamMeter("anthropic")
    meter.feed_head(block)

    assert meter.usage(input_estimate=99) == Usage(7, 5)


def test_without_reported_usage_the_meter_estimates_and_says_so() -> None:
    meter = StreamMeter("openai")
    meter.feed_head(chunk("a") + chunk("b"))
    meter.feed(chunk("c") + DONE)

    usage = meter.usage(input_estimate=20)

    assert usage == Usage(20, 4, reported=False)  # one per event, [DONE] included
