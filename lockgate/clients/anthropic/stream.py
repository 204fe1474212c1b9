"""Canonical `chat.completion.chunk` events -> Anthropic's streaming events.

Anthropic's order: `message_start`, then per content block `content_block_start`, its deltas and
`content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`. OpenAI streams
text and tool calls as deltas of one message, so the translator opens a new block whenever the kind
of delta changes (text, or a tool call with a new index) and closes the open one first. Usage comes
from the final usage chunk (the canonical request asks for it) and is reported in `message_delta`.
"""

from __future__ import annotations

from typing import Any

import orjson

from lockgate.clients.anthropic.common import anthropic_usage, event, message_id, stop_reason
from lockgate.errors import GatewayError, UpstreamServerError, anthropic_error

__all__ = ["MessageStreamTranslator", "in_band_error"]

_TEXT, _TOOL = 0, 1  # kinds of the open block


def in_band_error(error: GatewayError) -> bytes:
    """A failure after the stream started, as Anthropic reports it: an `error` event."""
    return b"event: error\ndata: " + anthropic_error(error)[1] + b"\n\n"


class MessageStreamTranslator:
    """Per-request state: the message's id and model, the open block, the usage seen so far."""

    __slots__ = (
        "_blocks",
        "_finish",
        "_model",
        "_open",
        "_provider",
        "_started",
        "_stopped",
        "_tools",
        "_usage",
    )

    def __init__(self, model: str, provider: str) -> None:
        self._model = model
        self._provider = provider
        self._tools: dict[object, int] = {}
        """OpenAI tool-call index -> the number of its block."""
        self._started = False
        self._stopped = False
        self._blocks = 0
        self._open: int | None = None
        self._finish: object = None
        self._usage: object = None

    def feed(self, data: bytes) -> bytes:
        """The Anthropic events for `data` (one or more whole canonical events)."""
        out: list[bytes] = []
        for raw in data.split(b"\n\n"):
            payload = raw[5:].strip() if raw.startswith(b"data:") else None
            if not payload or self._stopped:
                continue
            if payload == b"[DONE]":
                out.append(self.finish())
                continue
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise UpstreamServerError(
                    f"Provider '{self._provider}' sent a stream event that is not JSON",
                    code="upstream_invalid_response",
                ) from None
            if isinstance(chunk, dict):
                self._chunk(chunk, out)
        return b"".join(out)

    def finish(self) -> bytes:
        """The closing events (once): the open block's stop, `message_delta`, `message_stop`."""
        if self._stopped:
            return b""
        out: list[bytes] = []
        self._start(out, {})
        self._close(out)
        self._stopped = True
        delta = {"stop_reason": stop_reason(self._finish), "stop_sequence": None}
        usage = anthropic_usage(self._usage)
        ending = {"type": "message_delta", "delta": delta, "usage": usage}
        out.append(event("message_delta", ending))
        out.append(event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def _chunk(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        self._start(out, chunk)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                if self._open != _TEXT:
                    self._open_block(out, _TEXT, {"type": "text", "text": ""})
                self._delta(out, self._blocks, {"type": "text_delta", "text": text})
            for call in delta.get("tool_calls") or ():
                self._tool_call(call, out)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]

    def _tool_call(self, call: dict[str, Any], out: list[bytes]) -> None:
        index = call.get("index", 0)
        function = call.get("function") or {}
        if index not in self._tools:
            block = {"type": "tool_use", "id": call.get("id"), "name": function.get("name")}
            self._open_block(out, _TOOL, {**block, "input": {}})
            self._tools[index] = self._blocks
        fragment = function.get("arguments")
        if fragment:
            delta = {"type": "input_json_delta", "partial_json": fragment}
            self._delta(out, self._tools[index], delta)

    def _start(self, out: list[bytes], chunk: dict[str, Any]) -> None:
        if self._started:
            return
        self._started = True
        usage = anthropic_usage(chunk.get("usage"))
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 0},
        }
        out.append(event("message_start", {"type": "message_start", "message": message}))

    def _open_block(self, out: list[bytes], kind: int, block: dict[str, Any]) -> None:
        self._close(out)
        self._open = kind
        start = {"type": "content_block_start", "index": self._blocks, "content_block": block}
        out.append(event("content_block_start", start))

    def _delta(self, out: list[bytes], block: int, delta: dict[str, Any]) -> None:
        body = {"type": "content_block_delta", "index": block, "delta": delta}
        out.append(event("content_block_delta", body))

    def _close(self, out: list[bytes]) -> None:
        if self._open is None:
            return
        stop = {"type": "content_block_stop", "index": self._blocks}
        out.append(event("content_block_stop", stop))
        self._open = None
        self._blocks += 1
