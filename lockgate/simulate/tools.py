"""Deciding whether a reply is a tool call, and building that call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from lockgate.simulate.chat_request import ChatRequest
from lockgate.simulate.directives import DirectiveError
from lockgate.simulate.errors import invalid_value
from lockgate.simulate.ids import tool_call_id
from lockgate.simulate.schema_example import example_object

# Streamed arguments arrive in fragments of this many characters, like a model's tokens.
ARGUMENT_FRAGMENT_CHARS = 8


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    def as_message_part(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


def _find(functions: tuple[dict[str, Any], ...], name: str) -> dict[str, Any] | None:
    return next((function for function in functions if function.get("name") == name), None)


def _forced_name(tool_choice: str | dict[str, Any] | None) -> str | None:
    if not isinstance(tool_choice, dict):
        return None
    function = tool_choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


def choose_function(request: ChatRequest, directive: bool | str) -> dict[str, Any] | None:
    """The function to call, or None for a plain text answer.

    Precedence: ``tool_choice: "none"`` disables calls; a ``tool_call=<name>``
    directive; a ``tool_choice`` naming a function; then ``tool_call=1`` or
    ``tool_choice: "required"`` pick the first function tool.
    """
    choice = request.tool_choice
    if choice == "none":
        return None
    functions = request.functions
    if isinstance(directive, str):
        found = _find(functions, directive)
        if found is None:
            raise DirectiveError("tool_call", f"no function named {directive!r} in 'tools'")
        return found
    forced = _forced_name(choice)
    if forced is not None:
        found = _find(functions, forced)
        if found is None:
            raise invalid_value("tool_choice", f"no function named {forced!r} in 'tools'.")
        return found
    if directive or choice == "required":
        if not functions:
            if directive:
                raise DirectiveError("tool_call", "the request has no function tools")
            raise invalid_value("tools", "'tool_choice' is 'required' but no tools were given.")
        return functions[0]
    return None


def make_tool_call(function: dict[str, Any]) -> ToolCall:
    arguments = example_object(function.get("parameters"), required_only=True)
    return ToolCall(tool_call_id(), str(function["name"]), orjson.dumps(arguments).decode())


def argument_fragments(arguments: str) -> tuple[str, ...]:
    size = ARGUMENT_FRAGMENT_CHARS
    return tuple(arguments[start : start + size] for start in range(0, len(arguments), size))
