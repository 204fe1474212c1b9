"""Anthropic's streaming events -> OpenAI `chat.completion.chunk` events.

One parser per request (it holds the stream's id, model, open content blocks and usage). Every
chunk carries the same `id`, `object`, `created` and `model`. OpenAI numbers tool calls from 0
counting tool calls only, while Anthropic numbers every content block, so the parser keeps a map
from block index to tool-call index. The stream is complete only after `message_stop`; an `error`
event sets `failure` and ends the stream incomplete (the client-format layer reports it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from lockgate.errors import GatewayError, UpstreamServerError
from lockgate.providers.anthropic.common import JSON_TOOL, finish_reason, openai_usage
from lockgate.providers.anthropic.errors import map_error, status_of
from lockgate.providers.chunks import ChunkEncoding
from lockgate.transport.sse import EventSplitter, data_of

__all__ = ["AnthropicStreamParser"]

DONE_EVENT = b"data: [DONE]\n\n"
_TEXT = -1  # block kinds in `_blocks`; tool-call blocks hold their OpenAI index (>= 0)
_JSON_ANSWER = -2


class AnthropicStreamParser(ChunkEncoding):
    """Per-request state turning Anthropic SSE bytes into canonical SSE events."""

    __slots__ = (
        "_blocks",
        "_created",
        "_ended",
        "_id",
        "_include_usage",
        "_model",
        "_provider",
        "_scrub",
        "_splitter",
        "_tool_calls",
        "_usage",
        "complete",
        "failure",
    )

    def __init__(
        self, provider: str, include_usage: bool, created: int, scrub: Callable[[str], str]
    ) -> None:
        self._provider = provider
        self._include_usage = include_usage
        self._created = created
        self._scrub = scrub
        self._splitter = EventSplitter()
        self._id: object = None
        self._model: object = None
        self._blocks: dict[object, int] = {}
        self._tool_calls = 0
        self._usage: dict[str, Any] = {}
        self._ended = False
        self.complete = False
        self.failure: GatewayError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        events: list[bytes] = []
        for event in self._splitter.feed(data):
            if self._ended:
                break
            payload = data_of(event)
            if payload is None:
                continue
            try:
                value = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise self._unreadable() from None
            if not isinstance(value, dict):
                raise self._unreadable()
            self._handle(value, events)
        return events

    def _handle(self, value: dict[str, Any], events: list[bytes]) -> None:
        kind = value.get("type")
        if kind == "content_block_delta":
            self._delta(value, events)
        elif kind == "content_block_start":
            self._block_start(value, events)
        elif kind == "message_start":
            message = value.get("message")
            message = message if isinstance(message, dict) else {}
            self._id, self._model = message.get("id"), message.get("model")
            self._add_usage(message.get("usage"))
            events.append(self._chunk({"role": "assistant", "content": ""}))
        elif kind == "message_delta":
            self._add_usage(value.get("usage"))
            delta = value.get("delta")
            stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            if stop_reason is not None:
                reason = finish_reason(stop_reason, self._tool_calls)
                events.append(self._chunk({}, reason))
        elif kind == "message_stop":
            if self._include_usage:
                events.append(self._encode([], openai_usage(self._usage)))
            events.append(DONE_EVENT)
            self.complete = self._ended = True
        elif kind == "error":
            self.failure = self._error(value.get("error"))
            self._ended = True
        # ping, content_block_stop and event types added later carry nothing for the client

    def _block_start(self, value: dict[str, Any], events: list[bytes]) -> None:
        block = value.get("content_block")
        if not isinstance(block, dict):
            return
        index = value.get("index")
        if block.get("type") == "text":
            self._blocks[index] = _TEXT
            if block.get("text"):
                events.append(self._chunk({"content": block["text"]}))
        elif block.get("type") == "tool_use":
            if block.get("name") == JSON_TOOL:
                self._blocks[index] = _JSON_ANSWER
                return
            self._blocks[index] = call = self._tool_calls
            self._tool_calls += 1
            function = {"name": block.get("name"), "arguments": ""}
            tool_call = {"index": call, "id": block.get("id"), "type": "function"}
            events.append(self._chunk({"tool_calls": [{**tool_call, "function": function}]}))
        # thinking and server-tool blocks are not passed on

    def _delta(self, value: dict[str, Any], events: list[bytes]) -> None:
        block = self._blocks.get(value.get("index"))
        delta = value.get("delta")
        if block is None or not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta" and block == _TEXT:
            text = delta.get("text")
            if text:
                events.append(self._chunk({"content": text}))
        elif kind == "input_json_delta":
            fragment = delta.get("partial_json")
            if not fragment:
                return
            if block == _JSON_ANSWER:
                events.append(self._chunk({"content": fragment}))
            elif block >= 0:
                call = {"index": block, "function": {"arguments": fragment}}
                events.append(self._chunk({"tool_calls": [call]}))

    def _add_usage(self, usage: object) -> None:
        if isinstance(usage, dict):
            self._usage.update((k, v) for k, v in usage.items() if isinstance(v, int))

    def _error(self, error: object) -> GatewayError:
        fields = error if isinstance(error, dict) else {}
        kind = fields.get("type")
        kind = kind if isinstance(kind, str) else None
        message = self._scrub(str(fields.get("message") or "")) or "stream failed"
        return map_error(self._provider, status_of(kind), kind, message, None)

    def _unreadable(self) -> UpstreamServerError:
        return UpstreamServerError(
            f"Provider '{self._provider}' sent a stream event that is not JSON",
            code="upstream_invalid_response",
        )
