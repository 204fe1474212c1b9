"""A canonical (OpenAI) chat request -> the body of Converse / ConverseStream.

`max_tokens` / `max_completion_tokens`, `temperature`, `top_p` and `stop` become
`inferenceConfig`; `tools` and `tool_choice` become `toolConfig` (`auto` -> auto, `required` ->
any, a named function -> tool). JSON mode (`response_format` json_object / json_schema) is served
with a forced tool named `json_response` whose input schema is the wanted schema; the response and
stream translations turn its input back into `content`. A field Converse cannot honour is refused
with 400 `unsupported_parameter` (or dropped with `drop_unsupported`) unless it holds its no-op
default; fields that never change the answer (`store`, `metadata`, `user`, ...) are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from lockgate.errors import BadRequest, UnsupportedParameter
from lockgate.providers.bedrock.messages import convert_messages
from lockgate.providers.params import reject_or_drop

__all__ = ["JSON_TOOL", "converse_body"]

JSON_TOOL = "json_response"
_JSON_DESCRIPTION = (
    "Give your answer by calling this tool: its input is your response, as JSON. "
    "Do not answer in plain text."
)
_TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "response_format",
    }
)
_IGNORED = frozenset(
    {"store", "metadata", "service_tier", "prompt_cache_key", "user", "safety_identifier"}
)
_NO_OP: Mapping[str, Callable[[object], bool]] = MappingProxyType(
    {
        "n": lambda value: value == 1,
        "logprobs": lambda value: value is False,
        "presence_penalty": lambda value: value == 0,
        "frequency_penalty": lambda value: value == 0,
        "logit_bias": lambda value: value == {},
        "modalities": lambda value: value == ["text"],
        "parallel_tool_calls": lambda value: value is True,
    }
)


def _unsupported_fields(body: Mapping[str, Any]) -> list[str]:
    return [
        name
        for name, value in body.items()
        if name not in _TRANSLATED
        and name not in _IGNORED
        and value is not None
        and not (name in _NO_OP and _NO_OP[name](value))
    ]


def converse_body(body: dict[str, Any], provider: str, drop: bool) -> dict[str, Any]:
    """The Converse request for `body` (which may lose unsupported fields when `drop`)."""
    reject_or_drop(body, _unsupported_fields(body), provider, drop)
    system, messages = convert_messages(body["messages"], provider, drop)
    result: dict[str, Any] = {"messages": messages}
    if system:
        result["system"] = system
    inference = _inference(body)
    if inference:
        result["inferenceConfig"] = inference
    tools = _tool_config(body, provider, drop)
    if tools:
        result["toolConfig"] = tools
    return result


def _inference(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            config["maxTokens"] = value
            break
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    sequences = [stop] if isinstance(stop, str) else [s for s in stop or () if s]
    if sequences and all(sequences):
        config["stopSequences"] = sequences
    return config


def _tool_config(body: Mapping[str, Any], provider: str, drop: bool) -> dict[str, Any]:
    tools = [_tool(tool) for tool in body.get("tools") or ()]
    choice = _choice(body.get("tool_choice"), provider, drop)
    json_tool = _json_tool(body.get("response_format"), provider)
    if json_tool is not None and not (choice and "tool" in choice):
        if any(tool["toolSpec"]["name"] == JSON_TOOL for tool in tools):
            raise BadRequest(
                f"A tool named '{JSON_TOOL}' cannot be combined with response_format on "
                f"provider '{provider}': the gateway uses that name for JSON mode",
                param="tools",
            )
        choice = {"any": {}} if tools else {"tool": {"name": JSON_TOOL}}
        tools.append(json_tool)
    if not tools:
        return {}
    return {"tools": tools, "toolChoice": choice} if choice else {"tools": tools}


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    spec: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        spec["description"] = function["description"]
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    spec["inputSchema"] = {"json": parameters}
    return {"toolSpec": spec}


def _choice(choice: object, provider: str, drop: bool) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str):
            return {"tool": {"name": name}}
        raise BadRequest("'tool_choice.function.name' is required", param="tool_choice")
    # "none", `allowed_tools` and anything newer have no Converse counterpart.
    if not drop:
        raise UnsupportedParameter("tool_choice", provider)
    return None


def _json_tool(response_format: object, provider: str) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    description = _JSON_DESCRIPTION
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") or schema
        if schema.get("type") != "object":
            raise BadRequest(
                f"Provider '{provider}' answers in JSON through a tool, whose input is an "
                "object: 'response_format.json_schema.schema' must have type 'object'",
                param="response_format.json_schema.schema",
            )
        if spec.get("description"):
            description += f" The response: {spec['description']}"
    elif kind != "json_object":
        return None
    spec_out = {"name": JSON_TOOL, "description": description, "inputSchema": {"json": schema}}
    return {"toolSpec": spec_out}
