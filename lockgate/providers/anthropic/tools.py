"""Tools, `tool_choice`, `parallel_tool_calls` and JSON mode, in Anthropic's terms.

JSON mode (`response_format` `json_object` / `json_schema`) is served with a forced tool: the
request gains a tool named `json_response` whose `input_schema` is the wanted schema, and the answer
calling it is turned back into message `content` (the JSON text of its input) by the response and
stream translations. Tool input is always an object, so a `json_schema` must describe an object;
OpenAI's structured outputs require that too.
"""

from __future__ import annotations

from typing import Any

from lockgate.errors import BadRequest, UnsupportedParameter
from lockgate.providers.anthropic.common import JSON_TOOL

__all__ = ["tool_fields"]

_JSON_DESCRIPTION = (
    "Give your answer by calling this tool: its input is your response, as JSON. "
    "Do not answer in plain text."
)


def _empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


def tool_fields(body: dict[str, Any], provider: str, drop: bool) -> dict[str, Any]:
    """`tools` and `tool_choice` for the Anthropic request (empty when no tool is involved)."""
    tools = [_tool(tool) for tool in body.get("tools") or ()]
    choice = _choice(body.get("tool_choice"), provider, drop)
    json_tool = _json_tool(body.get("response_format"), provider)
    if json_tool is not None and not (choice and choice["type"] == "tool"):
        if any(tool["name"] == JSON_TOOL for tool in tools):
            raise BadRequest(
                f"A tool named '{JSON_TOOL}' cannot be combined with response_format on "
                f"provider '{provider}': the gateway uses that name for JSON mode",
                param="tools",
            )
        if tools and (choice is None or choice["type"] != "none"):
            # Answer with JSON or call one of the client's tools: OpenAI's `auto` with JSON mode.
            choice = {"type": "any"}
        else:
            choice = {"type": "tool", "name": JSON_TOOL, "disable_parallel_tool_use": True}
        tools.append(json_tool)
    if not tools:
        return {}  # a tool_choice without tools means nothing
    if body.get("parallel_tool_calls") is False and (choice is None or choice["type"] != "none"):
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    return {"tools": tools, "tool_choice": choice} if choice else {"tools": tools}


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    result: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        result["description"] = function["description"]
    result["input_schema"] = function.get("parameters") or _empty_schema()
    return result


def _choice(choice: object, provider: str, drop: bool) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return None if choice is None else {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str):
            return {"type": "tool", "name": name}
        raise BadRequest("'tool_choice.function.name' is required", param="tool_choice")
    # `allowed_tools`, `custom` and anything newer have no Anthropic counterpart.
    if not drop:
        raise UnsupportedParameter("tool_choice", provider)
    return None


def _json_tool(response_format: object, provider: str) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        schema = _empty_schema()
        return {"name": JSON_TOOL, "description": _JSON_DESCRIPTION, "input_schema": schema}
    if kind != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    schema = spec.get("schema") or _empty_schema()
    if schema.get("type") != "object":
        raise BadRequest(
            f"Provider '{provider}' answers in JSON through a tool, whose input is an object: "
            "'response_format.json_schema.schema' must have type 'object'",
            param="response_format.json_schema.schema",
        )
    description = _JSON_DESCRIPTION
    if spec.get("description"):
        description += f" The response: {spec['description']}"
    return {"name": JSON_TOOL, "description": description, "input_schema": schema}
