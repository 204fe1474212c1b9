"""Checks every translating adapter makes on OpenAI messages, written once."""

from __future__ import annotations

from typing import Any

import orjson

from lockgate.errors import BadRequest

__all__ = ["tool_arguments", "tool_call_id"]


def tool_arguments(arguments: str, where: str) -> dict[str, Any]:
    """A tool call's arguments (a JSON string) as the object other protocols want."""
    if not arguments.strip():
        return {}
    param = f"{where}.function.arguments"
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise BadRequest(f"'{param}' is not valid JSON", param=param) from None
    if not isinstance(value, dict):
        raise BadRequest(f"'{param}' must be a JSON object", param=param)
    return value


def tool_call_id(message: dict[str, Any], where: str) -> str:
    """The `tool_call_id` a tool message must carry."""
    value = message.get("tool_call_id")
    if not value:
        param = f"{where}.tool_call_id"
        raise BadRequest(f"'{param}' is required for a tool message", param=param)
    return str(value)
