"""Cohere v2 chat stream (SSE, one JSON event per `data:` line) -> OpenAI chunk events.

message-start gives the first chunk (role) and the id; content-delta text gives `content`
(thinking content is not passed on); tool-call-start gives a tool call's id and name,
tool-call-delta its argument fragments; message-end gives the finish chunk, the usage chunk
(with `stream_options.include_usage`) and `data: [DONE]`, and only then is the stream complete.
tool-plan, citation and debug events carry nothing for the client. A message-end with
finish_reason ERROR or TIMEOUT sets `failure` (retryable) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from lockgate.errors import GatewayError, UpstreamServerError
from lockgate.providers.chunks import ChunkEncoding
from lockgate.providers.cohere.response import (
    FAILED,
    failed_generation,
    finish_reason,
    openai_usage,
)
from lockgate.transport.sse import EventSplitter, data_of

__all__ = ["CohereStreamParser"]

DONE_EVENT = b"data: [DONE]\n\n"


def _message(value: dict[str, Any]) -> dict[str, Any]:
    delta = value.get("delta")
    message = delta.get("message") if isinstance(delta, dict) else None
    return message if isinstance(message, dict) else {}


def _field(value: object, key: str) -> dict[str, Any]:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, dict) else {}


class CohereStreamParser(ChunkEncoding):
    """Per-request state of one translated stream (not shared, not thread-safe)."""

    __slots__ = (
        "_calls",
        "_created",
        "_ended",
        "_id",
        "_include_usage",
        "_model",
        "_provider",
        "_scrub",
        "_splitter",
        "complete",
        "failure",
    )

    def __init__(
        self,
        provider: str,
        model: str,
        include_usage: bool,
        created: int,
        scrub: Callable[[str], str],
    ) -> None:
        self._provider = provider
        self._model = model
        self._include_usage = include_usage
        self._created = created
        self._scrub = scrub
        self._splitter = EventSplitter()
        self._id: object = None
        self._calls: dict[object, int] = {}  # Cohere's tool-call index -> OpenAI's
        self._ended = False
        self.complete = False
        self.failure: GatewayError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        events: list[bytes] = []
        for event in self._splitter.feed(data):
            if self._ended:
                break
            payload = data_of(event)
            if payload is None or payload == b"[DONE]":
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
        if kind == "content-delta":
            text = _field(_message(value), "content").get("text")
            if isinstance(text, str) and text:
                events.append(self._chunk({"content": text}))
        elif kind == "tool-call-delta":
            function = _field(_field(_message(value), "tool_calls"), "function")
            fragment = function.get("arguments")
            call = self._calls.get(value.get("index"))
            if isinstance(fragment, str) and fragment and call is not None:
                delta = {"index": call, "function": {"arguments": fragment}}
                events.append(self._chunk({"tool_calls": [delta]}))
        elif kind == "tool-call-start":
            self._tool_call_start(value, events)
        elif kind == "message-start":
            self._id = value.get("id")
            events.append(self._chunk({"role": "assistant", "content": ""}))
        elif kind == "message-end":
            self._end(_field(value, "delta"), events)
        elif kind == "error" or (kind is None and "message" in value):
            message = self._scrub(str(value.get("message") or "")) or "stream failed"
            self.failure = failed_generation(self._provider, "ERROR", message)
            self._ended = True
        # content-start/-end, tool-plan-delta, tool-call-end, citations, debug: nothing to pass

    def _tool_call_start(self, value: dict[str, Any], events: list[bytes]) -> None:
        call = _field(_message(value), "tool_calls")
        function = _field(call, "function")
        self._calls[value.get("index")] = index = len(self._calls)
        arguments = function.get("arguments")
        delta = {
            "index": index,
            "id": call.get("id"),
            "type": "function",
            "function": {
                "name": function.get("name"),
                "arguments": arguments if isinstance(arguments, str) else "",
            },
        }
        events.append(self._chunk({"tool_calls": [delta]}))

    def _end(self, delta: dict[str, Any], events: list[bytes]) -> None:
        self._ended = True
        reason = delta.get("finish_reason")
        if reason in FAILED:
            detail = self._scrub(str(delta.get("error") or ""))
            self.failure = failed_generation(self._provider, str(reason), detail)
            return
        events.append(self._chunk({}, finish_reason(reason, len(self._calls))))
        if self._include_usage:
            events.append(self._encode([], openai_usage(delta.get("usage"))))
        events.append(DONE_EVENT)
        self.complete = True

    def _unreadable(self) -> UpstreamServerError:
        return UpstreamServerError(
            f"Provider '{self._provider}' sent a stream event that is not JSON",
            code="upstream_invalid_response",
        )
