"""Replaying a cached answer as the stream its client would have received from the provider.

A cached answer is the client-format JSON body of a complete non-streaming answer. A client that
asked for `stream: true` gets the same answer back as server-sent events shaped like the provider's
own: OpenAI `chat.completion.chunk` events ending in `data: [DONE]`, or Anthropic's `message_start`
... `message_stop` events. Text is cut into pieces of a few words so the client sees a stream, but
never into more than `MAX_PIECES` pieces per text, so a long answer costs a bounded number of
events.

Not replayed: `logprobs` (every chunk carries `"logprobs": null`), a message's `annotations` (URL
citations of search models: no documented delta shape) and OpenAI's `obfuscation` padding (random
filler against side channels, meaningless for an answer served from the gateway's cache).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

__all__ = ["MAX_PIECES", "PIECE_CHARS", "anthropic_stream", "openai_stream", "split_text"]

PIECE_CHARS = 24
"""Target length of one streamed piece: a few words, longer only for long texts."""
MAX_PIECES = 48
"""At most this many pieces per text (content, refusal, tool arguments, thinking)."""

DONE_EVENT = b"data: [DONE]\n\n"
_TOOL_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
"""Anthropic blocks whose `input` streams as `input_json_delta` (the rest arrive whole)."""
_DELTA_USAGE_KEYS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "server_tool_use",
    "output_tokens_details",
)
"""Cumulative counts Anthropic repeats in `message_delta` (besides `output_tokens`)."""


def split_text(text: str) -> list[str]:
    """Cut `text` into at most `MAX_PIECES` pieces that concatenate back to it.

    Pieces are about `PIECE_CHARS` long (longer for long texts) and each cut is moved to a space
    when one is near, so pieces start at a word as a model's tokens do (" word"). Text without
    spaces (compact JSON, CJK) is cut where it falls.
    """
    if not text:
        return []
    size = max(PIECE_CHARS, -(-len(text) // MAX_PIECES))
    pieces: list[str] = []
    start, length = 0, len(text)
    while start < length:
        end = start + size
        if end >= length or len(pieces) == MAX_PIECES - 1:
            pieces.append(text[start:])
            break
        cut = text.find(" ", end, end + size)  # forward: the piece grows to the word's end
        if cut == -1:
            cut = text.rfind(" ", start + size // 2, end)  # back, keeping at least half a piece
        if cut == -1:
            cut = end
        pieces.append(text[start:cut])
        start = cut
    return pieces


# --- OpenAI Chat Completions -------------------------------------------------------------------


def openai_stream(body: bytes, include_usage: bool) -> list[bytes]:
    """The `chat.completion.chunk` events of the `chat.completion` in `body`, then `[DONE]`.

    Per choice: a first chunk with the role (and the first tool call's name when the answer is only
    tool calls), content / refusal / argument pieces, and a chunk with `finish_reason` and an empty
    delta. Choices are interleaved, each starting in index order, as the SDKs' accumulators expect.
    With `include_usage` every chunk carries `"usage": null` and a last chunk with no choices
    carries the usage.
    """
    completion = orjson.loads(body)
    head: dict[str, Any] = {
        "id": completion.get("id"),
        "object": "chat.completion.chunk",
        "created": completion.get("created"),
        "model": completion.get("model"),
    }
    for key in ("service_tier", "system_fingerprint"):
        if key in completion:
            head[key] = completion[key]
    prefix = b"data: " + orjson.dumps(head)[:-1] + b',"choices":['
    suffix = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"

    streams = [_choice_chunks(choice) for choice in completion.get("choices") or ()]
    events: list[bytes] = []
    for entries in _round_robin(streams):
        events.append(prefix + orjson.dumps(entries) + suffix)
    if include_usage:
        usage = orjson.dumps(completion.get("usage"))
        events.append(prefix + b'],"usage":' + usage + b"}\n\n")
    events.append(DONE_EVENT)
    return events


def _round_robin(streams: list[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    iterators = [iter(stream) for stream in streams]
    while iterators:
        alive = []
        for iterator in iterators:
            entry = next(iterator, None)
            if entry is not None:
                yield entry
                alive.append(iterator)
        iterators = alive


def _choice_chunks(choice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One choice's `choices` entries, in order."""
    index = choice.get("index", 0)
    deltas = _message_deltas(choice.get("message") or {})
    entries = [_entry(index, delta, None) for delta in deltas]
    entries.append(_entry(index, {}, choice.get("finish_reason")))
    return entries


def _entry(index: object, delta: dict[str, Any], finish_reason: object) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _message_deltas(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    refusal = message.get("refusal")
    calls = [call for call in message.get("tool_calls") or () if isinstance(call, dict)]
    text = content if isinstance(content, str) else None
    refused = refusal if isinstance(refusal, str) and refusal else None
    # OpenAI's opening delta: `content: ""` for a text answer, null otherwise; `refusal: ""` opens
    # a refusal, null otherwise; an answer of tool calls only names the first call right there.
    first: dict[str, Any] = {"role": "assistant", "content": "" if text is not None else None}
    deltas = [first]
    opens_with_call = bool(calls) and not text and refused is None
    if opens_with_call:
        first["tool_calls"] = [_call_start(0, calls[0])]
    first["refusal"] = "" if refused is not None else None

    deltas.extend({"content": piece} for piece in split_text(text or ""))
    deltas.extend({"refusal": piece} for piece in split_text(refused or ""))
    for position, call in enumerate(calls):
        if position or not opens_with_call:
            deltas.append({"tool_calls": [_call_start(position, call)]})
        deltas.extend(_call_argument_deltas(position, call))
    function_call = message.get("function_call")
    if isinstance(function_call, dict):  # deprecated, but still answered to `functions` requests
        deltas.append({"function_call": {"name": function_call.get("name"), "arguments": ""}})
        arguments = function_call.get("arguments") or ""
        deltas.extend({"function_call": {"arguments": piece}} for piece in split_text(arguments))
    return deltas


def _call_start(position: int, call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function")
    if call.get("type", "function") != "function" or not isinstance(function, dict):
        # No streamed shape is documented for other tool kinds: the call arrives whole.
        return {"index": position, **call}
    return {
        "index": position,
        "id": call.get("id"),
        "type": "function",
        "function": {"name": function.get("name"), "arguments": ""},
    }


def _call_argument_deltas(position: int, call: Mapping[str, Any]) -> list[dict[str, Any]]:
    function = call.get("function")
    if call.get("type", "function") != "function" or not isinstance(function, dict):
        return []
    arguments = function.get("arguments") or ""
    return [
        {"tool_calls": [{"index": position, "function": {"arguments": piece}}]}
        for piece in split_text(arguments)
    ]


# --- Anthropic Messages ------------------------------------------------------------------------


def anthropic_stream(body: bytes) -> list[bytes]:
    """The server-sent events Anthropic streams for the `message` in `body`.

    `message_start` (the message with no content, no stop reason and `output_tokens` at most 1, as
    Anthropic reports before generating), then per block `content_block_start`, its deltas and
    `content_block_stop` (a `ping` after the first block's start, where Anthropic sends one), then
    `message_delta` with the stop reason and the cumulative usage, and `message_stop`.
    """
    message = orjson.loads(body)
    usage = message.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    output_tokens = usage.get("output_tokens")
    output_tokens = output_tokens if isinstance(output_tokens, int) else 0
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": min(output_tokens, 1)},
    }
    if "stop_details" in message:
        start["stop_details"] = None
    events = [_event({"type": "message_start", "message": start})]

    blocks = [block for block in message.get("content") or () if isinstance(block, dict)]
    if not blocks:
        events.append(_PING)
    for index, block in enumerate(blocks):
        block_events = _block_events(index, block)
        if index == 0:
            block_events.insert(1, _PING)
        events.extend(block_events)

    delta: dict[str, Any] = {
        "stop_reason": message.get("stop_reason"),
        "stop_sequence": message.get("stop_sequence"),
    }
    for key in ("stop_details", "container"):
        if message.get(key) is not None:
            delta[key] = message[key]
    delta_usage = {key: usage[key] for key in _DELTA_USAGE_KEYS if usage.get(key) is not None}
    delta_usage["output_tokens"] = output_tokens
    events.append(_event({"type": "message_delta", "delta": delta, "usage": delta_usage}))
    events.append(_event({"type": "message_stop"}))
    return events


def _event(payload: Mapping[str, Any]) -> bytes:
    name = str(payload["type"]).encode()
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


_PING = _event({"type": "ping"})


def _block_events(index: int, block: Mapping[str, Any]) -> list[bytes]:
    kind = block.get("type")
    opening: Mapping[str, Any]
    deltas: list[dict[str, Any]] = []
    if kind == "text":
        opening = {"type": "text", "text": ""}
        citations = block.get("citations")
        for citation in citations if isinstance(citations, list) else ():
            deltas.append({"type": "citations_delta", "citation": citation})
        text = block.get("text")
        deltas.extend({"type": "text_delta", "text": p} for p in split_text(_str(text)))
    elif kind == "thinking":
        opening = {"type": "thinking", "thinking": "", "signature": ""}
        thinking = _str(block.get("thinking"))
        deltas.extend({"type": "thinking_delta", "thinking": p} for p in split_text(thinking))
        signature = block.get("signature")
        if signature:
            deltas.append({"type": "signature_delta", "signature": signature})
    elif kind in _TOOL_INPUT_BLOCKS:
        opening = {**block, "input": {}}
        arguments = orjson.dumps(block.get("input", {})).decode()
        # Anthropic opens every tool input with an empty fragment.
        deltas.append({"type": "input_json_delta", "partial_json": ""})
        deltas.extend(
            {"type": "input_json_delta", "partial_json": p} for p in split_text(arguments)
        )
    else:  # redacted thinking, server tool results, ...: sent whole, as Anthropic does
        opening = block
    events = [_event({"type": "content_block_start", "index": index, "content_block": opening})]
    events.extend(
        _event({"type": "content_block_delta", "index": index, "delta": delta}) for delta in deltas
    )
    events.append(_event({"type": "content_block_stop", "index": index}))
    return events


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
