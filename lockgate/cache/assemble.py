"""Assembling a relayed stream into the non-streaming answer the cache stores.

An assembler watches every stream of a cached model, so it is kept cheap: each event's JSON is
decoded once with orjson, text fragments are only appended to lists (joined once, in `result()`),
and once the text kept passes `max_bytes` the assembler gives up and drops what it held. A stream
that did not end properly (no `[DONE]` / `message_stop`, a choice without a finish reason, an
in-band error event) assembles to None: only complete, successful answers are cached.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import orjson

from lockgate.transport.sse import data_of

__all__ = ["MAX_BYTES", "AnthropicStreamAssembler", "OpenAIStreamAssembler"]

MAX_BYTES = 1024 * 1024
"""Default bound on the text an assembler keeps (UTF-8 bytes of content, arguments, thinking)."""

_OPEN: Final = 0
_COMPLETE: Final = 1
_ABANDONED: Final = 2
"""Error event, undecodable event or too much text: nothing is cached, nothing more is kept."""

_DONE = b"[DONE]"
_TOOL_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
_DELTA_FIELDS: Final = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
    "input_json_delta": ("input", "partial_json"),
}
"""Anthropic delta type -> (the block field it extends, the delta's key holding the fragment)."""


def _payloads(block: bytes) -> Iterator[bytes]:
    """The `data` of each event in `block` (one or more complete events)."""
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    for event in block.split(b"\n\n"):
        if event:
            payload = data_of(event)
            if payload is not None:
                yield payload


def _size(text: str) -> int:
    """UTF-8 length; `isascii()` is O(1) in CPython, so ASCII text is not encoded to count it."""
    return len(text) if text.isascii() else len(text.encode())


# --- OpenAI Chat Completions -------------------------------------------------------------------


class _Call:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type = "function"
        self.name = ""
        self.arguments: list[str] = []

    def as_message_part(self) -> dict[str, Any]:
        function = {"name": self.name, "arguments": "".join(self.arguments)}
        return {"id": self.id, "type": self.type, "function": function}


class _Choice:
    __slots__ = ("annotations", "calls", "content", "finish_reason", "function_call", "refusal")

    def __init__(self) -> None:
        self.content: list[str] | None = None
        """None until a delta carries `content` as a string (OpenAI opens text with "")."""
        self.refusal: list[str] = []
        self.calls: dict[int, _Call] = {}
        self.function_call: _Call | None = None
        self.annotations: list[Any] = []
        self.finish_reason: str | None = None

    def message(self) -> dict[str, Any]:
        content = "".join(self.content) if self.content is not None else None
        if not content and (self.calls or self.refusal or self.function_call):
            content = None  # a tool-call or refusal answer has no content, not ""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content,
            "refusal": "".join(self.refusal) or None,
        }
        if self.calls:
            message["tool_calls"] = [self.calls[i].as_message_part() for i in sorted(self.calls)]
        if self.function_call is not None:
            call = self.function_call.as_message_part()["function"]
            message["function_call"] = call
        if self.annotations:
            message["annotations"] = self.annotations
        return message


class OpenAIStreamAssembler:
    """Rebuilds the `chat.completion` body from a stream of `chat.completion.chunk` events.

    `feed()` each relayed block; `result()` is the body, or None if the stream was incomplete,
    failed or too large. Tool calls are assembled by their `index`, their arguments concatenated;
    names too, as the openai SDK's own accumulator does. `logprobs` is not kept (always None).
    """

    __slots__ = (
        "_choices",
        "_created",
        "_extra",
        "_id",
        "_max_bytes",
        "_model",
        "_size",
        "_state",
        "_usage",
    )

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._size = 0
        self._state = _OPEN
        self._id: object = None
        self._created: object = None
        self._model: object = None
        self._extra: dict[str, object] = {}
        """`service_tier` and `system_fingerprint`, when the stream carried them."""
        self._choices: dict[int, _Choice] = {}
        self._usage: object = None

    def feed(self, block: bytes) -> None:
        """Take in one relayed block of complete events; events after `[DONE]` are ignored."""
        if self._state != _OPEN:
            return
        for payload in _payloads(block):
            if payload == _DONE:
                self._state = _COMPLETE
                return
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                self._abandon()
                return
            if not isinstance(chunk, dict) or chunk.get("error") is not None:
                self._abandon()
                return
            self._chunk(chunk)
            if self._size > self._max_bytes:
                self._abandon()
                return

    def result(self) -> bytes | None:
        """The `chat.completion` JSON body, or None unless the stream completed successfully."""
        if self._state != _COMPLETE or not self._choices:
            return None
        choices = []
        for index in sorted(self._choices):
            choice = self._choices[index]
            if choice.finish_reason is None:
                return None
            choices.append(
                {
                    "index": index,
                    "message": choice.message(),
                    "logprobs": None,
                    "finish_reason": choice.finish_reason,
                }
            )
        body: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._usage is not None:
            body["usage"] = self._usage
        body.update(self._extra)
        return orjson.dumps(body)

    def _abandon(self) -> None:
        self._state = _ABANDONED
        self._choices = {}
        self._usage = None

    def _chunk(self, chunk: dict[str, Any]) -> None:
        if not self._id:  # Azure opens with a filter-results chunk of empty id and model
            self._id = chunk.get("id")
            self._created = chunk.get("created")
            self._model = chunk.get("model")
        for key in ("service_tier", "system_fingerprint"):
            if key in chunk and (chunk[key] is not None or key not in self._extra):
                self._extra[key] = chunk[key]
        usage = chunk.get("usage")
        if usage is not None:
            self._usage = usage
        for entry in chunk.get("choices") or ():
            if not isinstance(entry, dict):
                continue
            index = entry.get("index", 0)
            choice = self._choices.get(index)
            if choice is None:
                choice = self._choices[index] = _Choice()
            delta = entry.get("delta")
            if delta:
                self._delta(choice, delta)
            finish_reason = entry.get("finish_reason")
            if finish_reason is not None:
                choice.finish_reason = finish_reason

    def _delta(self, choice: _Choice, delta: dict[str, Any]) -> None:
        content = delta.get("content")
        if isinstance(content, str):
            if choice.content is None:
                choice.content = []
            if content:
                choice.content.append(content)
                self._size += _size(content)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            choice.refusal.append(refusal)
            self._size += _size(refusal)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                index = call.get("index", 0)
                slot = choice.calls.get(index)
                if slot is None:
                    slot = choice.calls[index] = _Call()
                self._call(slot, call, call.get("function"))
        function_call = delta.get("function_call")
        if isinstance(function_call, dict):
            if choice.function_call is None:
                choice.function_call = _Call()
            self._call(choice.function_call, {}, function_call)
        annotations = delta.get("annotations")
        if isinstance(annotations, list):
            choice.annotations.extend(annotations)

    def _call(self, slot: _Call, call: dict[str, Any], function: object) -> None:
        if slot.id is None and call.get("id"):
            slot.id = call["id"]
        if call.get("type"):
            slot.type = call["type"]
        if not isinstance(function, dict):
            return
        name = function.get("name")
        if isinstance(name, str):
            slot.name += name
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            slot.arguments.append(arguments)
            self._size += _size(arguments)


# --- Anthropic Messages ------------------------------------------------------------------------


class _Block:
    __slots__ = ("block", "field", "parts")

    def __init__(self, block: dict[str, Any]) -> None:
        self.block = block
        kind = block.get("type")
        self.field: str | None = None
        """The field deltas extend: `text`, `thinking` or `input` (partial JSON), or none."""
        if kind in ("text", "thinking"):
            self.field = kind
        elif kind in _TOOL_INPUT_BLOCKS:
            self.field = "input"
        initial = block.get(self.field) if self.field in ("text", "thinking") else None
        self.parts: list[str] = [initial] if isinstance(initial, str) and initial else []

    def assembled(self) -> dict[str, Any] | None:
        """The finished block; None if a tool input is not valid JSON."""
        if self.field is None:
            return self.block
        block = dict(self.block)
        if self.field != "input":
            block[self.field] = "".join(self.parts)
        elif self.parts:
            try:
                block["input"] = orjson.loads("".join(self.parts))
            except orjson.JSONDecodeError:
                return None
        return block


class AnthropicStreamAssembler:
    """Rebuilds the `message` body from Anthropic's streaming events.

    Text, thinking (with its signature), tool inputs (parsed from the concatenated `partial_json`),
    citations and blocks sent whole; `stop_reason`, `stop_sequence` and the usage of
    `message_start` updated by the cumulative counts of `message_delta`. None unless
    `message_stop` arrived, no `error` event did, and the text stayed within `max_bytes`.
    """

    __slots__ = ("_blocks", "_max_bytes", "_message", "_size", "_state", "_stop", "_usage")

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._size = 0
        self._state = _OPEN
        self._message: dict[str, Any] | None = None
        self._blocks: dict[int, _Block] = {}
        self._stop: dict[str, Any] = {}
        """What `message_delta` said: stop_reason, stop_sequence (and stop_details, container)."""
        self._usage: dict[str, Any] = {}

    def feed(self, block: bytes) -> None:
        """Take in one relayed block of complete events; events after `message_stop` are ignored."""
        if self._state != _OPEN:
            return
        for payload in _payloads(block):
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                self._abandon()
                return
            if not isinstance(event, dict):
                self._abandon()
                return
            kind = event.get("type")
            if kind == "content_block_delta":
                if not self._delta(event):
                    self._abandon()
                    return
            elif kind == "content_block_start":
                self._start_block(event)
            elif kind == "message_start":
                self._start_message(event)
            elif kind == "message_delta":
                self._message_delta(event)
            elif kind == "message_stop":
                self._state = _COMPLETE
                return
            elif kind == "error":
                self._abandon()
                return
            if self._size > self._max_bytes:
                self._abandon()
                return

    def result(self) -> bytes | None:
        """The `message` JSON body, or None unless the stream completed successfully."""
        if self._state != _COMPLETE or self._message is None:
            return None
        content = []
        for index in sorted(self._blocks):
            block = self._blocks[index].assembled()
            if block is None:
                return None
            content.append(block)
        message = {**self._message, "content": content, **self._stop, "usage": self._usage}
        return orjson.dumps(message)

    def _abandon(self) -> None:
        self._state = _ABANDONED
        self._blocks = {}
        self._message = None

    def _start_message(self, event: dict[str, Any]) -> None:
        message = event.get("message")
        if isinstance(message, dict):
            self._message = message
            usage = message.get("usage")
            self._usage = dict(usage) if isinstance(usage, dict) else {}

    def _start_block(self, event: dict[str, Any]) -> None:
        block = event.get("content_block")
        index = event.get("index")
        if isinstance(block, dict) and isinstance(index, int):
            started = self._blocks[index] = _Block(block)
            for part in started.parts:
                self._size += _size(part)

    def _delta(self, event: dict[str, Any]) -> bool:
        """Apply one content delta; False when it names a block that never started."""
        index = event.get("index")
        target = self._blocks.get(index) if isinstance(index, int) else None
        delta = event.get("delta")
        if target is None or not isinstance(delta, dict):
            return False
        kind = delta.get("type")
        fields = _DELTA_FIELDS.get(kind) if isinstance(kind, str) else None
        if fields is not None:
            field, key = fields
            fragment = delta.get(key)
            if field == target.field and isinstance(fragment, str) and fragment:
                target.parts.append(fragment)
                self._size += _size(fragment)
        elif kind == "signature_delta":
            target.block["signature"] = delta.get("signature")
        elif kind == "citations_delta":
            citations = target.block.get("citations")
            if isinstance(citations, list):
                citations.append(delta.get("citation"))
            else:
                target.block["citations"] = [delta.get("citation")]
        return True

    def _message_delta(self, event: dict[str, Any]) -> None:
        delta = event.get("delta")
        if isinstance(delta, dict):
            # As the SDKs do: a null container does not erase the one message_start announced.
            self._stop.update(
                (key, value)
                for key, value in delta.items()
                if value is not None or key != "container"
            )
        usage = event.get("usage")
        if isinstance(usage, dict):
            # Counts on message_delta are cumulative totals: they replace, and an omitted (or
            # null) one leaves message_start's value.
            self._usage.update((key, value) for key, value in usage.items() if value is not None)
