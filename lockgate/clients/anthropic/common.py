"""What the response and stream translations share: ids, stop reasons, usage, event framing."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

__all__ = ["anthropic_usage", "event", "message_id", "stop_reason"]

_STOP_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "function_call": "tool_use",
        "content_filter": "refusal",
    }
)


def stop_reason(finish_reason: object) -> str:
    """Anthropic's `stop_reason` for OpenAI's `finish_reason`.

    OpenAI does not say whether a stop sequence ended the answer, so `stop` is `end_turn`.
    """
    if not isinstance(finish_reason, str):
        return "end_turn"
    return _STOP_REASONS.get(finish_reason, "end_turn")


def message_id(completion_id: object) -> str:
    text = str(completion_id or "")
    return text if text.startswith("msg_") else f"msg_{text}"


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def anthropic_usage(usage: object) -> dict[str, int]:
    """Anthropic's `usage` from OpenAI's: cached prompt tokens are not counted as input twice."""
    if not isinstance(usage, dict):
        usage = {}
    details = usage.get("prompt_tokens_details")
    cached = _count(details, "cached_tokens") if isinstance(details, dict) else 0
    return {
        "input_tokens": max(0, _count(usage, "prompt_tokens") - cached),
        "output_tokens": _count(usage, "completion_tokens"),
        "cache_read_input_tokens": cached,
    }


def event(kind: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event as Anthropic frames it: `event:` line, then the JSON `data:` line."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
