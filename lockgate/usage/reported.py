"""Token counts as the provider reported them, read from the answer the client receives.

Reported usage is the truth (DESIGN §2, account). A stream carries it only in some events
(OpenAI's last chunk when `include_usage` was asked for; Anthropic's `message_start` and
`message_delta`); where a stream has none, output tokens are estimated as one per event carrying
content, which is how providers stream (a token or a few per event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

__all__ = ["StreamMeter", "Usage", "usage_from_body"]

Format = Literal["openai", "anthropic"]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    reported: bool = True

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


def usage_from_body(body: bytes, form: Format) -> Usage | None:
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    usage = decoded.get("usage") if isinstance(decoded, dict) else None
    return _read(usage, form) if isinstance(usage, dict) else None


def _read(usage: dict[str, Any], form: Format) -> Usage | None:
    if form == "openai":
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
        if isinstance(prompt, int) and isinstance(completion, int):
            return Usage(prompt, completion)  # embeddings report no completion tokens
        return None
    output = usage.get("output_tokens")
    return Usage(_anthropic_input(usage), output) if isinstance(output, int) else None


def _anthropic_input(usage: dict[str, Any]) -> int:
    """Anthropic counts cached prompt tokens apart from `input_tokens`; all were sent."""
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return sum(value for key in keys if isinstance(value := usage.get(key), int))


class StreamMeter:
    """Watches a client-format SSE stream go by and keeps the usage it reports."""

    __slots__ = ("_events", "_form", "_input", "_output", "_reported")

    def __init__(self, form: Format) -> None:
        self._form = form
        self._events = 0
        self._input: int | None = None
        self._output: int | None = None
        self._reported = False

    def feed(self, block: bytes) -> None:
        if self._form == "openai":
            self._events += block.count(b'"content":"') + block.count(b'"arguments":"')
        else:
            self._events += block.count(b'"type":"content_block_delta"')
        if b'"usage"' not in block:
            return
        for line in block.split(b"\n"):
            if line.startswith(b"data:") and b'"usage"' in line:
                self._take(line[5:])

    def usage(self, input_estimate: int) -> Usage:
        if self._reported and self._input is not None and self._output is not None:
            return Usage(self._input, self._output)
        output = self._output if self._output is not None else self._events
        return Usage(self._input if self._input is not None else input_estimate, output, False)

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
                self._input, self._output, self._reported = (
                    found.input_tokens,
                    found.output_tokens,
                    True,
                )
            return
        message = event.get("message")
        usage = message.get("usage") if isinstance(message, dict) else event.get("usage")
        if not isinstance(usage, dict):
            return
        if "input_tokens" in usage:
            self._input = _anthropic_input(usage)
        if event.get("type") == "message_delta" and isinstance(usage.get("output_tokens"), int):
            self._output = usage["output_tokens"]
            self._reported = self._input is not None
