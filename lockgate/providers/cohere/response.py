"""A Cohere v2 chat answer -> an OpenAI `chat.completion` (JSON bytes); finish reasons, usage.

`message.content` text parts are joined into `content` (thinking parts are not passed on),
`message.tool_calls` become `tool_calls` (arguments stay a JSON string). `finish_reason`
COMPLETE and STOP_SEQUENCE -> `stop`, MAX_TOKENS -> `length`, TOOL_CALL -> `tool_calls`; ERROR
and TIMEOUT mean the generation failed: a retryable 502. Usage comes from `usage.tokens` (what
the model saw), else from `usage.billed_units`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from lockgate.errors import GatewayError, UpstreamServerError

__all__ = ["chat_completion", "failed_generation", "finish_reason", "openai_usage"]

_FINISH_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "COMPLETE": "stop",
        "STOP_SEQUENCE": "stop",
        "MAX_TOKENS": "length",
        "TOOL_CALL": "tool_calls",
    }
)
FAILED = frozenset({"ERROR", "TIMEOUT"})


def finish_reason(reason: object, tool_calls: int) -> str:
    """OpenAI's finish reason for Cohere's; TOOL_CALL without a call is a `stop`."""
    mapped = _FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "stop" if mapped == "tool_calls" and not tool_calls else mapped


def failed_generation(provider: str, reason: str, detail: str) -> GatewayError:
    """The retryable error for an answer that ended with ERROR or TIMEOUT."""
    message = f"Provider '{provider}' failed to generate (finish_reason {reason})"
    error = UpstreamServerError(f"{message}: {detail}" if detail else message)
    error.retryable = True
    return error


def _count(usage: object, key: str) -> int | None:
    value = usage.get(key) if isinstance(usage, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return None


def openai_usage(usage: object) -> dict[str, Any]:
    """OpenAI `usage` from Cohere's `{tokens, billed_units}` (counts may be floats)."""
    usage = usage if isinstance(usage, dict) else {}
    counts = {}
    for key in ("input_tokens", "output_tokens"):
        value = _count(usage.get("tokens"), key)
        counts[key] = value if value is not None else _count(usage.get("billed_units"), key) or 0
    prompt, completion = counts["input_tokens"], counts["output_tokens"]
    cached = _count(usage, "cached_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _answer(body: bytes, provider: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    message = answer.get("message") if isinstance(answer, dict) else None
    if not isinstance(answer, dict) or not isinstance(message, dict):
        raise UpstreamServerError(
            f"Provider '{provider}' answered with something that is not a Cohere chat response",
            code="upstream_invalid_response",
        )
    return answer, message


def _texts(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    parts = content if isinstance(content, list) else []
    return [
        part["text"]
        for part in parts
        if isinstance(part, dict)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
    ]


def _tool_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments or {}).decode()
        calls.append(
            {
                "id": call.get("id"),
                "type": "function",
                "function": {"name": function.get("name"), "arguments": arguments or "{}"},
            }
        )
    return calls


def chat_completion(body: bytes, provider: str, model: str, created: int) -> bytes:
    answer, message = _answer(body, provider)
    reason = answer.get("finish_reason")
    if reason in FAILED:
        raise failed_generation(provider, str(reason), "")
    texts = _texts(message.get("content"))
    tool_calls = _tool_calls(message)
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        reply["tool_calls"] = tool_calls
    choice = {
        "index": 0,
        "message": reply,
        "logprobs": None,
        "finish_reason": finish_reason(reason, len(tool_calls)),
    }
    completion = {
        "id": answer.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": openai_usage(answer.get("usage")),
    }
    return orjson.dumps(completion)
