"""A canonical `chat.completion` -> an Anthropic Message object (JSON bytes)."""

from __future__ import annotations

from typing import Any

import orjson

from lockgate.clients.anthropic.common import anthropic_usage, message_id, stop_reason
from lockgate.errors import UpstreamServerError

__all__ = ["to_message"]


def to_message(body: bytes, provider: str) -> bytes:
    """Text (or a refusal) becomes a text block, each tool call a `tool_use` block."""
    completion = _decode(body, provider)
    choice = completion["choices"][0] if completion["choices"] else {}
    reply = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = reply.get("content") or reply.get("refusal")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in reply.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _arguments(function.get("arguments"), provider),
            }
        )
    message = {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model"),
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(completion.get("usage")),
    }
    return orjson.dumps(message)


def _decode(body: bytes, provider: str) -> dict[str, Any]:
    try:
        completion = orjson.loads(body)
    except orjson.JSONDecodeError:
        completion = None
    if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
        raise _invalid(provider, "is not a chat completion")
    return completion


def _arguments(arguments: object, provider: str) -> dict[str, Any]:
    """A tool call's arguments (JSON text) as the object Anthropic's `input` is."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise _invalid(provider, "holds tool-call arguments that are not a JSON object")
    return value


def _invalid(provider: str, what: str) -> UpstreamServerError:
    return UpstreamServerError(
        f"The answer of provider '{provider}' {what}", code="upstream_invalid_response"
    )
