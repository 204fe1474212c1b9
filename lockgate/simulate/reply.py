"""Planning a chat reply: text or tool call, its stream pieces and finish reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lockgate.simulate.chat_request import ChatRequest
from lockgate.simulate.directives import Directives
from lockgate.simulate.prompt import last_user_text
from lockgate.simulate.schema_example import example_object
from lockgate.simulate.settings import SimulatorSettings
from lockgate.simulate.text import cut_at_stop, pieces_of, reply_text
from lockgate.simulate.tools import ToolCall, argument_fragments, choose_function, make_tool_call


@dataclass(frozen=True, slots=True)
class ChatReply:
    """One choice's answer; ``pieces`` are content words or argument fragments."""

    content: str | None
    pieces: tuple[str, ...]
    finish_reason: str
    tool_call: ToolCall | None = None

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)


def _json_content(response_format: dict[str, Any], user_text: str, words: int) -> str | None:
    kind = response_format.get("type")
    if kind == "json_object":
        return json.dumps({"reply": reply_text(user_text, words)}, ensure_ascii=False)
    if kind == "json_schema":
        schema = response_format["json_schema"].get("schema")
        return json.dumps(example_object(schema, required_only=False), ensure_ascii=False)
    return None


def _text_reply(
    request: ChatRequest, directives: Directives, settings: SimulatorSettings
) -> ChatReply:
    words = directives.tokens if directives.tokens is not None else settings.completion_tokens
    if directives.content is None and request.response_format is not None:
        structured = _json_content(request.response_format, last_user_text(request.messages), words)
        if structured is not None:
            # Kept whole: a capped or stop-cut JSON document would not parse.
            return ChatReply(structured, pieces_of(structured), "stop")
    if directives.content is not None:
        text = directives.content
    else:
        text = reply_text(last_user_text(request.messages), words)
    finish_reason = "stop"
    if request.max_tokens is not None:
        pieces = pieces_of(text)
        if len(pieces) > request.max_tokens:
            text = "".join(pieces[: request.max_tokens])
            finish_reason = "length"
    if request.stop:
        text, stopped = cut_at_stop(text, request.stop)
        if stopped:
            finish_reason = "stop"
    return ChatReply(text, pieces_of(text), finish_reason)


def plan_reply(
    request: ChatRequest, directives: Directives, settings: SimulatorSettings
) -> ChatReply:
    function = choose_function(request, directives.tool_call)
    if function is None:
        return _text_reply(request, directives, settings)
    call = make_tool_call(function)
    return ChatReply(None, argument_fragments(call.arguments), "tool_calls", call)
