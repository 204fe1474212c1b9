"""A canonical (OpenAI) chat request -> the body of Cohere's `POST /v2/chat`.

`max_completion_tokens` (or `max_tokens`), `temperature`, `seed`, `presence_penalty`,
`frequency_penalty` keep their names; `top_p` becomes `p` (clamped to Cohere's 0.01..0.99),
`top_k` becomes `k`, `stop` becomes `stop_sequences`. `tools` keep OpenAI's shape; `tool_choice`
`required` / `none` become `REQUIRED` / `NONE` (`auto` is Cohere's default); a named function
narrows `tools` to that one and requires it. `response_format` `json_object` / `json_schema`
become `{"type": "json_object"}` (with `json_schema` = the schema). A field Cohere cannot honour
is refused with 400 `unsupported_parameter` (or dropped with `drop_unsupported`) unless it holds
its no-op default; fields that never change the answer (`store`, `metadata`, `user`, ...) are
left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from lockgate.errors import BadRequest, UnsupportedParameter
from lockgate.providers.cohere.messages import convert_messages
from lockgate.providers.params import reject_or_drop

__all__ = ["chat_body"]

MIN_P, MAX_P = 0.01, 0.99
_TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
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
        "logit_bias": lambda value: value == {},
        "modalities": lambda value: value == ["text"],
        "parallel_tool_calls": lambda value: value is True,
    }
)
_RENAMES: Mapping[str, str] = MappingProxyType(
    {
        "temperature": "temperature",
        "seed": "seed",
        "presence_penalty": "presence_penalty",
        "frequency_penalty": "frequency_penalty",
        "top_k": "k",
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


def chat_body(body: dict[str, Any], model: str, provider: str, drop: bool) -> dict[str, Any]:
    """The Cohere request for `body` (which may lose unsupported fields when `drop`)."""
    reject_or_drop(body, _unsupported_fields(body), provider, drop)
    if body.get("tools") and _response_format(body.get("response_format")) is not None:
        # Cohere's v2 chat does not take response_format together with tools.
        reject_or_drop(body, ("response_format",), provider, drop)
    result: dict[str, Any] = {
        "model": model,
        "messages": convert_messages(body["messages"], provider, drop),
    }
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            result["max_tokens"] = value
            break
    for name, upstream in _RENAMES.items():
        if body.get(name) is not None:
            result[upstream] = body[name]
    top_p = body.get("top_p")
    if isinstance(top_p, int | float) and not isinstance(top_p, bool):
        result["p"] = min(max(float(top_p), MIN_P), MAX_P)
    stop = body.get("stop")
    sequences = [stop] if isinstance(stop, str) else [item for item in stop or () if item]
    if sequences:
        result["stop_sequences"] = sequences
    result.update(_tools(body, provider, drop))
    response_format = _response_format(body.get("response_format"))
    if response_format is not None:
        result["response_format"] = response_format
    if body.get("stream") is True:
        result["stream"] = True
    return result


def _tools(body: Mapping[str, Any], provider: str, drop: bool) -> dict[str, Any]:
    tools = [_tool(tool) for tool in body.get("tools") or ()]
    if not tools:
        return {}  # a tool_choice without tools means nothing
    choice = body.get("tool_choice")
    result: dict[str, Any] = {}
    if choice == "required":
        result["tool_choice"] = "REQUIRED"
    elif choice == "none":
        result["tool_choice"] = "NONE"
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        tools = [tool for tool in tools if tool["function"]["name"] == name]
        if not tools:
            raise BadRequest(
                f"'tool_choice' names function {name!r}, which is not in 'tools'",
                param="tool_choice",
            )
        result["tool_choice"] = "REQUIRED"
    elif choice not in (None, "auto") and not drop:
        raise UnsupportedParameter("tool_choice", provider)  # allowed_tools, custom, ...
    if any(tool.get("function", {}).get("strict") is True for tool in body.get("tools") or ()):
        result["strict_tools"] = True
    return {"tools": tools, **result}


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    spec: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        spec["description"] = function["description"]
    spec["parameters"] = function.get("parameters") or {"type": "object", "properties": {}}
    return {"type": "function", "function": spec}


def _response_format(response_format: object) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict) and schema:
            return {"type": "json_object", "json_schema": schema}
        return {"type": "json_object"}
    return None
