"""Token counts as the provider reported them, read from the answer the client receives.

Reported usage is the truth (DESIGN §2, account). A stream carries it only in some events
(OpenAI's last chunk when `include_usage` was asked for; Anthropic's `message_start` and
`message_delta`); where a stream has none, output tokens are estimated as one per event carrying
content, which is how providers stream (a token or a few per event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import orjson

__all__ = ["StreamMeter", "Usage", "hide_usage", "usage_from_body"]

Format = Literal["openai", "anthropic"]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    reported: bool = True
    cached_tokens: int = 0
    """Input tokens served from the provider's prompt cache (counted in `input_tokens` too)."""

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


class _WithUsage(msgspec.Struct):
    usage: dict[str, Any] | None = None


_usage_decoder = msgspec.json.Decoder(_WithUsage)
"""Reads only `usage`: the rest of an answer (its choices, its content) is skipped, not built."""


def usage_from_body(body: bytes, form: Format) -> Usage | None:
    try:
        usage = _usage_decoder.decode(body).usage
    except msgspec.DecodeError:  # not JSON, not an object, or a `usage` that is not one
        return None
    return _read(usage, form) if usage is not None else None


def _read(usage: dict[str, Any], form: Format) -> Usage | None:
    if form == "openai":
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
        if isinstance(prompt, int) and isinstance(completion, int):
            # embeddings report no completion tokens
            return Usage(prompt, completion, cached_tokens=_openai_cached(usage))
        return None
    output = usage.get("output_tokens")
    if not isinstance(output, int):
        return None
    return Usage(_anthropic_input(usage), output, cached_tokens=_anthropic_cached(usage))


def _openai_cached(usage: dict[str, Any]) -> int:
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return cached if isinstance(cached, int) else 0


def _anthropic_cached(usage: dict[str, Any]) -> int:
    cached = usage.get("cache_read_input_tokens")
    return cached if isinstance(cached, int) else 0


def _anthropic_input(usage: dict[str, Any]) -> int:
    """Anthropic counts cached prompt tokens apart from `input_tokens`; all were sent."""
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return sum(value for key in keys if isinstance(value := usage.get(key), int))


class StreamMeter:
    """Watches a client-format SSE stream go by and keeps the usage it reports.

    Usage sits at the ends of a stream: Anthropic's `message_start` first, OpenAI's usage chunk
    and Anthropic's `message_delta` last. So only the first blocks (`feed_head`) and the last two
    are read; the blocks between have their events counted (one scan), for the estimate used when
    the provider reports nothing. Blocks hold whole events.
    """

    __slots__ = (
        "_cached",
        "_events",
        "_form",
        "_input",
        "_marker",
        "_output",
        "_reported",
        "_tail",
    )

    def __init__(self, form: Format) -> None:
        self._form = form
        self._marker = b"data:" if form == "openai" else b'"type":"content_block_delta"'
        self._events = 0
        self._tail: tuple[bytes, bytes] = (b"", b"")
        self._input: int | None = None
        self._output: int | None = None
        self._cached = 0
        self._reported = False

    def feed_head(self, block: bytes) -> None:
        """A block of the stream's start (where Anthropic reports its input tokens)."""
        self._events += block.count(self._marker)
        self._read(block)

    def feed(self, block: bytes) -> None:
        self._events += block.count(self._marker)
        self._tail = (self._tail[1], block)

    def usage(self, input_estimate: int) -> Usage:
        """What the stream reported (or the estimate); call it once the stream is over."""
        for block in self._tail:
            self._read(block)
        if self._reported and self._input is not None and self._output is not None:
            return Usage(self._input, self._output, cached_tokens=self._cached)
        output = self._output if self._output is not None else self._events
        return Usage(self._input if self._input is not None else input_estimate, output, False)

    def _read(self, block: bytes) -> None:
        # Usage events are few: find them rather than look at every line. OpenAI streams with
        # `include_usage` carry `"usage":null` in every chunk, which this does not stop at.
        at = _usage_object_at(block, 0)
        while at >= 0:
            start = block.rfind(b"\n", 0, at) + 1
            end = block.find(b"\n", at)
            end = len(block) if end < 0 else end
            if block.startswith(b"data:", start):
                self._take(block[start + 5 : end])
            at = _usage_object_at(block, end)

    def _take(self, payload: bytes) -> None:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        if self._form == "openai":
            usage = event.get("usage")
            found = _read(usage, "openai") if isinstance(usage, dict) else None
            if found is not None:
                self._input, self._output = found.input_tokens, found.output_tokens
                self._cached, self._reported = found.cached_tokens, True
            return
        message = event.get("message")
        usage = message.get("usage") if isinstance(message, dict) else event.get("usage")
        if not isinstance(usage, dict):
            return
        if "input_tokens" in usage:
            self._input = _anthropic_input(usage)
            self._cached = _anthropic_cached(usage)
        if event.get("type") == "message_delta" and isinstance(usage.get("output_tokens"), int):
            self._output = usage["output_tokens"]
            self._reported = self._input is not None


def _usage_object_at(data: bytes, start: int) -> int:
    """Where the next `usage` with a value (an object) is, compact or with a space; -1: none."""
    compact = data.find(b'"usage":{', start)
    spaced = data.find(b'"usage": {', start, compact if compact >= 0 else len(data))
    return spaced if spaced >= 0 else compact


def hide_usage(block: bytes) -> bytes:
    """OpenAI SSE `block` (whole events) as a client that did not ask for `include_usage` gets it.

    The gateway asks every provider for usage on streams (the ledger needs it); a client that did
    not ask gets no `usage` fields and no usage-only last chunk, as from OpenAI itself. Only the
    events that still name `usage` once the `null`s are gone are decoded: usually just the last.
    """
    block = block.replace(b',"usage":null', b"")
    at = block.find(b'"usage"')
    if at < 0:
        return block
    kept: list[bytes] = []
    copied = 0  # `block[:copied]` is decided
    while at >= 0:
        start = block.rfind(b"\n\n", 0, at)
        start = 0 if start < 0 else start + 2
        end = block.find(b"\n\n", at)
        end = len(block) if end < 0 else end
        event = _without_usage(block[start:end])
        kept.append(block[copied:start])
        if event:
            kept.append(event)
            copied = end
        else:  # the event goes, and the blank line that ended it
            copied = min(end + 2, len(block))
        at = block.find(b'"usage"', copied)
    kept.append(block[copied:])
    shown = b"".join(kept)
    return b"" if shown.isspace() else shown  # blank lines alone are no event


def _without_usage(event: bytes) -> bytes:
    """One event with its `usage` field removed; empty when it carried only the usage."""
    head, _, payload = event.partition(b"data:")
    try:
        chunk = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return event
    if not isinstance(chunk, dict) or "usage" not in chunk:
        return event
    del chunk["usage"]
    if chunk.get("choices") == []:
        return b""
    return head + b"data: " + orjson.dumps(chunk)
