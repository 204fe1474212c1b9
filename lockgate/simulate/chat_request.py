"""Validation of a chat-completions request body into a typed request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lockgate.simulate.errors import invalid_type, invalid_value, missing_parameter

_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
_TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    n: int = 1
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    functions: tuple[dict[str, Any], ...] = ()  # the "function" objects of function tools
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None


def _optional_int(body: dict[str, Any], name: str, minimum: int, maximum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(name, "an integer")
    if not minimum <= value <= maximum:
        raise invalid_value(name, f"expected a value between {minimum} and {maximum}.")
    return value


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        raise missing_parameter("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array")
    if not messages:
        raise invalid_value("messages", "expected an array with minimum length 1.")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_type(f"messages.[{index}]", "an object")
        if not isinstance(message.get("role"), str):
            raise missing_parameter(f"messages.[{index}].role")
    return messages


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return tuple(item for item in stop if item)
    raise invalid_type("stop", "a string or an array of strings")


def _functions(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    tools = body.get("tools")
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise invalid_type("tools", "an array")
    functions: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid_type(f"tools.[{index}]", "an object")
        if tool.get("type", "function") != "function":
            continue  # custom tools are accepted but never called
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise missing_parameter(f"tools.[{index}].function.name")
        functions.append(function)
    return tuple(functions)


def _tool_choice(body: dict[str, Any]) -> str | dict[str, Any] | None:
    choice = body.get("tool_choice")
    if choice is None or isinstance(choice, dict):
        return choice
    if isinstance(choice, str) and choice in _TOOL_CHOICE_MODES:
        return choice
    raise invalid_value("tool_choice", "expected 'none', 'auto', 'required' or an object.")


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    response_format = body.get("response_format")
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise invalid_type("response_format", "an object")
    kind = response_format.get("type")
    if kind not in _RESPONSE_FORMATS:
        raise invalid_value("response_format.type", f"expected one of {sorted(_RESPONSE_FORMATS)}.")
    if kind == "json_schema" and not isinstance(response_format.get("json_schema"), dict):
        raise missing_parameter("response_format.json_schema")
    return response_format


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise invalid_type("stream_options", "an object")
    return options.get("include_usage") is True


def parse_chat_request(body: dict[str, Any], model: str) -> ChatRequest:
    """Validate the fields the simulator uses; everything else is ignored."""
    messages = _messages(body)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_type("stream", "a boolean")
    n = _optional_int(body, "n", 1, 128)
    caps = [
        cap
        for cap in (
            _optional_int(body, "max_tokens", 1, 1_000_000),
            _optional_int(body, "max_completion_tokens", 1, 1_000_000),
        )
        if cap is not None
    ]
    return ChatRequest(
        model=model,
        messages=messages,
        n=n or 1,
        stream=bool(stream),
        include_usage=_include_usage(body),
        max_tokens=min(caps) if caps else None,
        stop=_stop(body),
        functions=_functions(body),
        tool_choice=_tool_choice(body),
        response_format=_response_format(body),
    )
