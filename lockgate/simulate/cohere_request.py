"""A Cohere v2 chat body -> the simulator's typed `ChatRequest`, and Cohere's errors.

Strict like the real API: an unknown top-level field, a role other than system / user /
assistant / tool, a content part Cohere does not take for that role, a tool message answering
no earlier tool call, `p` outside 0.01..0.99, or a `tool_choice` other than REQUIRED / NONE is
a 400, so a translation bug in a gateway shows up in tests. Errors are `{"id", "message"}`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from lockgate.simulate.chat_request import ChatRequest
from lockgate.simulate.errors import ApiError, retry_after_headers

__all__ = ["CohereApiError", "parse_chat_request", "simulated_cohere_error"]

_TOP_LEVEL = frozenset(
    {
        "model",
        "messages",
        "stream",
        "tools",
        "strict_tools",
        "documents",
        "citation_options",
        "response_format",
        "safety_mode",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "k",
        "p",
        "logprobs",
        "tool_choice",
        "thinking",
        "priority",
        "simulate",
    }
)
_PARTS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "system": frozenset({"text"}),
        "user": frozenset({"text", "image_url"}),
        "assistant": frozenset({"text", "thinking"}),
        "tool": frozenset({"text", "document"}),
    }
)
_SIMULATED: Mapping[int, str] = MappingProxyType(
    {
        400: "invalid request: simulated bad request for model {model}",
        401: "invalid api token",
        403: "forbidden: the api token cannot use model {model}",
        404: "model '{model}' not found, make sure the correct model ID was used",
        422: "unprocessable entity: simulated for model {model}",
        429: "You are using a Trial key, which is limited to 10 API calls / minute.",
        500: "internal server error, this has been reported to our developers",
        503: "service unavailable: too many users, please try again later",
    }
)


class CohereApiError(ApiError):
    """An error answered as Cohere does: `{"id": ..., "message": ...}`."""

    def body(self) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "message": self.message}


def _invalid(message: str) -> CohereApiError:
    return CohereApiError(400, f"invalid request: {message}")


def simulated_cohere_error(status: int, model: str, retry_after: float | None) -> CohereApiError:
    template = _SIMULATED.get(status, f"simulated error with status {status}")
    headers = retry_after_headers(retry_after) if retry_after is not None else None
    return CohereApiError(status, template.format(model=model), headers=headers)


def _content(content: object, role: str, where: str) -> list[dict[str, Any]] | str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(f"{where}.content must be a string or an array of content parts")
    allowed = _PARTS[role]
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise _invalid(f"{where}.content[{j}]: type {kind!r} is not allowed for role {role}")
        if kind == "text" and not isinstance(part.get("text"), str):
            raise _invalid(f"{where}.content[{j}].text must be a string")
        if kind == "image_url" and not isinstance((part.get("image_url") or {}).get("url"), str):
            raise _invalid(f"{where}.content[{j}].image_url.url is required")
    return content


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _invalid("messages must be a non-empty array")
    messages: list[dict[str, Any]] = []
    calls: set[str] = set()
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in _PARTS:
            raise _invalid(f"{where}.role must be one of system, user, assistant, tool")
        converted: dict[str, Any] = {"role": role}
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not isinstance(call.get("id"), str):
                    raise _invalid(f"{where}.tool_calls: each call needs an id and a function")
                calls.add(call["id"])
            converted["tool_calls"] = message.get("tool_calls") or []
            if "content" not in message and not converted["tool_calls"]:
                raise _invalid(f"{where}: an assistant message needs content or tool_calls")
        elif "content" not in message:
            raise _invalid(f"{where}.content is required")
        if role == "tool" and message.get("tool_call_id") not in calls:
            raise _invalid(f"{where}.tool_call_id does not match any earlier tool call")
        if "content" in message:
            converted["content"] = _content(message["content"], str(role), where)
        messages.append(converted)
    return messages


def _functions(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    functions = []
    for index, tool in enumerate(body.get("tools") or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise _invalid(f"tools[{index}] must be a function tool")
        if not isinstance(function.get("name"), str) or "parameters" not in function:
            raise _invalid(f"tools[{index}].function needs name and parameters")
        functions.append(function)
    return tuple(functions)


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    value = body.get("response_format")
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("text", "json_object"):
        raise _invalid("response_format.type must be text or json_object")
    if kind == "text":
        return None
    if value.get("json_schema") is not None:
        return {"type": "json_schema", "json_schema": {"schema": value["json_schema"]}}
    return {"type": "json_object"}


def _check_numbers(body: dict[str, Any]) -> None:
    p = body.get("p")
    if p is not None and (not isinstance(p, int | float) or not 0.01 <= p <= 0.99):
        raise _invalid("p must be between 0.01 and 0.99")
    for name in ("max_tokens", "seed", "k"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise _invalid(f"{name} must be an integer")
    limit = body.get("max_tokens")
    if isinstance(limit, int) and limit < 1:
        raise _invalid("max_tokens must be at least 1")


def parse_chat_request(body: dict[str, Any], model: str) -> ChatRequest:
    unknown = sorted(set(body) - _TOP_LEVEL)
    if unknown:
        raise _invalid(f"unknown field: parameter {unknown[0]} is not a valid field")
    _check_numbers(body)
    choice = body.get("tool_choice")
    if choice not in (None, "REQUIRED", "NONE"):
        raise _invalid("tool_choice must be REQUIRED or NONE")
    functions = _functions(body)
    if choice is not None and not functions:
        raise _invalid("tool_choice requires tools")
    stop = body.get("stop_sequences") or []
    return ChatRequest(
        model=model,
        messages=_messages(body),
        stream=body.get("stream") is True,
        include_usage=True,
        max_tokens=body.get("max_tokens"),
        stop=tuple(item for item in stop if isinstance(item, str) and item),
        functions=functions,
        tool_choice=choice.lower() if isinstance(choice, str) else None,
        response_format=_response_format(body),
    )
