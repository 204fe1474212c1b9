"""Gemini SSE (`streamGenerateContent?alt=sse`) -> OpenAI `chat.completion.chunk` events.

Each Gemini event is `data: {GenerateContentResponse}` holding the next piece of every
candidate; the last piece of a candidate carries its `finishReason`, and `usageMetadata` (running
totals) rides along. Gemini has no end-of-stream marker: the connection just ends. The parser
only sees bytes, so it calls a stream complete when every candidate asked for (`n`) has carried
a finishReason, no error event came, and no partial event is left over. At that moment it emits
the finish chunks, the usage chunk (`choices: []`, with `stream_options.include_usage`) and
`data: [DONE]`; a stream cut before then never looks complete, so the pipeline reports it.

A Gemini in-band error event (`data: {"error": {...}}`) sets `failure` (mapped like an HTTP
error with that code); `feed` returns only the events before it, the rest is ignored, and the
pipeline ends the client's stream with the error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from lockgate.errors import GatewayError, UpstreamServerError
from lockgate.providers.gemini.errors import error_object
from lockgate.providers.gemini.response import (
    completion_id,
    finish_reason,
    openai_usage,
    read_parts,
    response_model,
)
from lockgate.transport.sse import EventSplitter, data_of

__all__ = ["GeminiStreamParser"]

DONE_EVENT = b"data: [DONE]\n\n"
ErrorMapper = Callable[[int, Mapping[str, Any]], GatewayError]


class GeminiStreamParser:
    """Per-request state of one translated stream (not shared, not thread-safe)."""

    __slots__ = (
        "_created",
        "_done",
        "_error",
        "_failure",
        "_finished",
        "_id",
        "_include_usage",
        "_model",
        "_n",
        "_provider",
        "_splitter",
        "_started",
        "_tool_calls",
        "_usage",
    )

    def __init__(
        self, *, provider: str, model: str, n: int, include_usage: bool, error: ErrorMapper
    ) -> None:
        self._provider = provider
        self._model = model
        self._n = max(1, n)
        self._include_usage = include_usage
        self._error = error
        self._splitter = EventSplitter()
        self._created = int(time.time())
        self._id: str | None = None
        self._usage: object = None
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._tool_calls: dict[int, int] = {}  # candidate index -> tool calls sent so far
        self._done = False
        self._failure: GatewayError | None = None

    @property
    def complete(self) -> bool:
        return self._done and self._failure is None and not self._splitter.pending.strip()

    @property
    def failure(self) -> GatewayError | None:
        return self._failure

    def feed(self, data: bytes) -> list[bytes]:
        events: list[bytes] = []
        for event in self._splitter.feed(data):
            payload = data_of(event)
            if self._failure is not None:
                break
            if payload is None:
                continue
            try:
                value = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise UpstreamServerError(
                    f"Provider '{self._provider}' sent a stream event that is not valid JSON"
                ) from None
            if isinstance(value, list):  # some Google paths wrap the object in a list
                value = value[0] if value else None
            if isinstance(value, dict) and "error" in value:
                self._failure = self._mapped_error(error_object(value))
            elif isinstance(value, dict) and not self._done:
                events += self._translate(value)
        return events

    def _mapped_error(self, error: Mapping[str, Any]) -> GatewayError:
        code = error.get("code")
        return self._error(code if isinstance(code, int) and 400 <= code <= 599 else 500, error)

    def _translate(self, response: dict[str, Any]) -> list[bytes]:
        if self._id is None:
            self._id = completion_id(response)
        self._model = response_model(response, self._model)
        if "usageMetadata" in response:
            self._usage = response["usageMetadata"]
        events: list[bytes] = []
        candidates = response.get("candidates")
        if not candidates and "promptFeedback" in response:  # the prompt itself was blocked
            for index in range(self._n):
                events += self._finish(index, "content_filter")
        for position, candidate in enumerate(candidates if isinstance(candidates, list) else []):
            events += self._candidate(candidate.get("index", position), candidate)
        if len(self._finished) >= self._n and not self._done:
            self._done = True
            if self._include_usage:
                events.append(self._chunk([], usage=openai_usage(self._usage)))
            events.append(DONE_EVENT)
        return events

    def _candidate(self, index: int, candidate: Mapping[str, Any]) -> list[bytes]:
        if index in self._finished:
            return []
        parts = read_parts(candidate)
        delta: dict[str, Any] = {}
        if parts.text:
            delta["content"] = parts.text
        if parts.tool_calls:
            sent = self._tool_calls.get(index, 0)
            delta["tool_calls"] = [
                {"index": sent + offset, **call} for offset, call in enumerate(parts.tool_calls)
            ]
            self._tool_calls[index] = sent + len(parts.tool_calls)
        events = [self._delta(index, delta)] if delta else []
        reason = candidate.get("finishReason")
        if reason:
            events += self._finish(index, finish_reason(reason, index in self._tool_calls))
        return events

    def _finish(self, index: int, reason: str) -> list[bytes]:
        events = [] if index in self._started else [self._delta(index, {"content": ""})]
        self._finished.add(index)
        return [*events, self._choice(index, {}, reason)]

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **delta}
        return self._choice(index, delta, None)

    def _choice(self, index: int, delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._chunk([choice])

    def _chunk(self, choices: list[dict[str, Any]], usage: object = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = usage
        return b"data: " + orjson.dumps(chunk) + b"\n\n"
