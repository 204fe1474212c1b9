"""What the request, response and stream translations share: names, finish reasons, usage."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["JSON_TOOL", "finish_reason", "openai_usage"]

JSON_TOOL = "json_response"
"""The tool JSON mode forces: its input is the answer, returned to the client as `content`.

The name is reserved: a request offering its own tool of that name is refused, so an answer calling
it can be recognised without knowing the request.
"""

_FINISH_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
    }
)


def finish_reason(stop_reason: object, tool_calls: int) -> str:
    """OpenAI's finish reason for Anthropic's `stop_reason`.

    `tool_use` answered only by the JSON-mode tool is a plain `stop`: the client asked for JSON
    content, not for a tool call.
    """
    reason = _FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    if reason == "tool_calls" and not tool_calls:
        return "stop"
    return reason


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def openai_usage(usage: object) -> dict[str, Any]:
    """OpenAI `usage` from Anthropic's: cache reads and writes are prompt tokens too."""
    if not isinstance(usage, dict):
        usage = {}
    cached = _count(usage, "cache_read_input_tokens")
    prompt = _count(usage, "input_tokens") + cached + _count(usage, "cache_creation_input_tokens")
    completion = _count(usage, "output_tokens")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
