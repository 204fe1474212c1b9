"""A Converse answer -> an OpenAI `chat.completion` (JSON bytes); finish reasons and usage."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from lockgate.errors import UpstreamServerError
from lockgate.providers.bedrock.request import JSON_TOOL

__all__ = ["chat_completion", "completion_id", "finish_reason", "openai_usage"]

_FINISH_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "guardrail_intervened": "content_filter",
        "content_filtered": "content_filter",
    }
)


def completion_id() -> str:
    """Converse answers carry no id; OpenAI clients expect one."""
    return f"chatcmpl-{secrets.token_hex(12)}"


def finish_reason(stop_reason: object, tool_calls: int) -> str:
    """OpenAI's finish reason; `tool_use` answered only by the JSON-mode tool is a `stop`."""
    reason = _FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    return "stop" if reason == "tool_calls" and not tool_calls else reason


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def openai_usage(usage: object) -> dict[str, Any]:
    """OpenAI `usage`: Converse's `inputTokens` leaves out cache reads and writes."""
    usage = usage if isinstance(usage, dict) else {}
    cached = _count(usage, "cacheReadInputTokens")
    prompt = _count(usage, "inputTokens") + cached + _count(usage, "cacheWriteInputTokens")
    completion = _count(usage, "outputTokens")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _message(body: bytes, provider: str) -> tuple[dict[str, Any], list[Any]]:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    output = answer.get("output") if isinstance(answer, dict) else None
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(answer, dict) or not isinstance(content, list):
        raise UpstreamServerError(
            f"Provider '{provider}' answered with something that is not a Converse response",
            code="upstream_invalid_response",
        )
    return answer, content


def chat_completion(body: bytes, provider: str, model: str, created: int) -> bytes:
    """Text blocks become `content`, toolUse blocks `tool_calls`; reasoning is not passed on."""
    answer, blocks = _message(body, provider)
    texts: list[str] = []
    json_answer: str | None = None
    tool_calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        tool_use = block.get("toolUse")
        if isinstance(tool_use, dict):
            arguments = orjson.dumps(tool_use.get("input") or {}).decode()
            if tool_use.get("name") == JSON_TOOL:
                json_answer = arguments
                continue
            function = {"name": tool_use.get("name"), "arguments": arguments}
            call = {"id": tool_use.get("toolUseId"), "type": "function", "function": function}
            tool_calls.append(call)
    content = json_answer
    if content is None:
        content = "".join(texts) if texts or not tool_calls else None
    reply: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    reason = finish_reason(answer.get("stopReason"), len(tool_calls))
    choice = {"index": 0, "message": reply, "logprobs": None, "finish_reason": reason}
    completion = {
        "id": completion_id(),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": openai_usage(answer.get("usage")),
    }
    return orjson.dumps(completion)
