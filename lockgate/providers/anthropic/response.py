"""Anthropic's Message object -> an OpenAI `chat.completion` (JSON bytes)."""

from __future__ import annotations

from typing import Any

import orjson

from lockgate.errors import UpstreamServerError
from lockgate.providers.anthropic.common import JSON_TOOL, finish_reason, openai_usage

__all__ = ["chat_completion", "decode_message"]


def decode_message(body: bytes, provider: str) -> dict[str, Any]:
    """The Message object in `body`, or a 502 saying the provider's answer was unreadable."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamServerError(
            f"Provider '{provider}' answered with something that is not an Anthropic message",
            code="upstream_invalid_response",
        )
    return message


def chat_completion(body: bytes, provider: str, created: int) -> bytes:
    """Text blocks become `content`, tool_use blocks `tool_calls`; thinking is not passed on.

    An answer through the JSON-mode tool becomes `content`: the JSON text of the tool's input.
    """
    message = decode_message(body, provider)
    texts: list[str] = []
    json_answer: str | None = None
    tool_calls: list[dict[str, Any]] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            if block.get("name") == JSON_TOOL:
                json_answer = arguments
            else:
                tool_calls.append(
                    {
                        "id": block.get("id"),
                        "type": "function",
                        "function": {"name": block.get("name"), "arguments": arguments},
                    }
                )
    content: str | None
    if json_answer is not None:
        content = json_answer  # any text around it would stop the content from parsing
    else:
        content = "".join(texts) if texts or not tool_calls else None
    reply: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    completion = {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason"), len(tool_calls)),
            }
        ],
        "usage": openai_usage(message.get("usage")),
    }
    return orjson.dumps(completion)
