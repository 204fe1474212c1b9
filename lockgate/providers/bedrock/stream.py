"""ConverseStream (binary event stream) -> OpenAI `chat.completion.chunk` events.

Each event message's `:event-type` names it and its payload is the event's JSON: messageStart
(role), contentBlockStart (a toolUse's id and name), contentBlockDelta (text, or a fragment of a
toolUse's input JSON), contentBlockStop, messageStop (stopReason), then metadata (usage). The
finish chunk is sent at messageStop; the usage chunk (with `stream_options.include_usage`) and
`[DONE]` at metadata, which completes the stream. An `exception` message (throttling, model
stream error, ...) sets `failure`; a bad CRC or framing raises a 502: the bytes cannot be trusted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from lockgate.errors import GatewayError, UpstreamServerError
from lockgate.providers.bedrock.errors import bedrock_error, status_of
from lockgate.providers.bedrock.eventstream import EventStreamDecoder, EventStreamError, Message
from lockgate.providers.bedrock.request import JSON_TOOL
from lockgate.providers.bedrock.response import completion_id, finish_reason, openai_usage
from lockgate.providers.chunks import ChunkEncoding

__all__ = ["BedrockStreamParser"]

DONE_EVENT = b"data: [DONE]\n\n"
_JSON_ANSWER = -1  # block kind in `_blocks`; tool-call blocks hold their OpenAI index (>= 0)


class BedrockStreamParser(ChunkEncoding):
    """Per-request state of one translated stream (not shared, not thread-safe)."""

    __slots__ = (
        "_blocks",
        "_created",
        "_decoder",
        "_ended",
        "_id",
        "_include_usage",
        "_model",
        "_provider",
        "_scrub",
        "_tool_calls",
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
        self._decoder = EventStreamDecoder()
        self._id = completion_id()
        self._blocks: dict[object, int] = {}
        self._tool_calls = 0
        self._ended = False
        self.complete = False
        self.failure: GatewayError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        if self._ended:
            return []
        try:
            messages = self._decoder.feed(data)
        except EventStreamError as exc:
            raise UpstreamServerError(
                f"Provider '{self._provider}' sent a malformed event stream: {exc}",
                code="upstream_invalid_response",
            ) from None
        events: list[bytes] = []
        for message in messages:
            if self._ended:
                break
            self._handle(message, events)
        return events

    def _handle(self, message: Message, events: list[bytes]) -> None:
        headers = message.headers
        kind = headers.get(":message-type")
        if kind == "exception" or kind == "error":
            self.failure = self._error(headers, message.payload)
            self._ended = True
            return
        value = self._payload(message.payload)
        event = headers.get(":event-type")
        if event == "contentBlockDelta":
            self._delta(value, events)
        elif event == "contentBlockStart":
            self._block_start(value, events)
        elif event == "messageStart":
            events.append(self._chunk({"role": "assistant", "content": ""}))
        elif event == "messageStop":
            reason = finish_reason(value.get("stopReason"), self._tool_calls)
            events.append(self._chunk({}, reason))
        elif event == "metadata":
            if self._include_usage:
                events.append(self._encode([], openai_usage(value.get("usage"))))
            events.append(DONE_EVENT)
            self.complete = self._ended = True
        # contentBlockStop and event types added later carry nothing for the client

    def _block_start(self, value: dict[str, Any], events: list[bytes]) -> None:
        start = value.get("start")
        tool_use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(tool_use, dict):
            return
        index = value.get("contentBlockIndex")
        if tool_use.get("name") == JSON_TOOL:
            self._blocks[index] = _JSON_ANSWER
            return
        self._blocks[index] = call = self._tool_calls
        self._tool_calls += 1
        function = {"name": tool_use.get("name"), "arguments": ""}
        tool_call = {"index": call, "id": tool_use.get("toolUseId"), "type": "function"}
        events.append(self._chunk({"tool_calls": [{**tool_call, "function": function}]}))

    def _delta(self, value: dict[str, Any], events: list[bytes]) -> None:
        delta = value.get("delta")
        if not isinstance(delta, dict):
            return
        text = delta.get("text")
        if isinstance(text, str):
            if text:
                events.append(self._chunk({"content": text}))
            return
        tool_use = delta.get("toolUse")
        fragment = tool_use.get("input") if isinstance(tool_use, dict) else None
        block = self._blocks.get(value.get("contentBlockIndex"))
        if not isinstance(fragment, str) or not fragment or block is None:
            return  # reasoning deltas and the like are not passed on
        if block == _JSON_ANSWER:
            events.append(self._chunk({"content": fragment}))
        else:
            call = {"index": block, "function": {"arguments": fragment}}
            events.append(self._chunk({"tool_calls": [call]}))

    def _payload(self, payload: bytes) -> dict[str, Any]:
        try:
            value = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise UpstreamServerError(
                f"Provider '{self._provider}' sent a stream event that is not a JSON object",
                code="upstream_invalid_response",
            )
        return value

    def _error(self, headers: dict[str, str | int | bool | bytes], payload: bytes) -> GatewayError:
        kind = headers.get(":exception-type") or headers.get(":error-code")
        name = str(kind[:1].upper() + kind[1:]) if isinstance(kind, str) and kind else None
        message = str(headers.get(":error-message") or "")
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            message = str(value.get("message") or value.get("Message") or message)
        message = self._scrub(message) or "stream failed"
        return bedrock_error(self._provider, status_of(name), name, message, None)
