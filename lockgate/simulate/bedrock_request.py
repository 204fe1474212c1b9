"""A Bedrock Converse request body -> the simulator's typed `ChatRequest`, and AWS errors.

Strict like the real API: an unknown field (top level, in `inferenceConfig`, in a content block),
a conversation not starting with a user turn, roles not alternating, a toolResult answering no
toolUse of the turn before, or tool blocks without `toolConfig` are 400 ValidationException, so a
translation bug in a gateway shows up in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from lockgate.simulate.chat_request import ChatRequest
from lockgate.simulate.errors import ApiError

__all__ = ["BedrockApiError", "bedrock_error", "parse_converse_request"]

ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
ERROR_TYPES: Mapping[int, str] = MappingProxyType(
    {
        400: "ValidationException",
        403: "AccessDeniedException",
        404: "ResourceNotFoundException",
        408: "ModelTimeoutException",
        424: "ModelErrorException",
        429: "ThrottlingException",
        500: "InternalServerException",
        503: "ServiceUnavailableException",
    }
)
_TOP_LEVEL = frozenset(
    {
        "messages",
        "system",
        "inferenceConfig",
        "toolConfig",
        "guardrailConfig",
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "promptVariables",
        "requestMetadata",
        "performanceConfig",
        "simulate",
    }
)
_INFERENCE = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
_BLOCKS = frozenset({"text", "image", "document", "video", "toolUse", "toolResult", "cachePoint"})


class BedrockApiError(ApiError):
    """An error answered as AWS does: `x-amzn-ErrorType` header and `{"message": ...}`."""

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        kind = error_type or ERROR_TYPES.get(status, "InternalServerException")
        super().__init__(status, message, headers={"x-amzn-ErrorType": f"{kind}:{ERROR_NAMESPACE}"})
        self.error_type = kind

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


def bedrock_error(status: int, message: str) -> BedrockApiError:
    return BedrockApiError(status, message)


def _invalid(message: str) -> BedrockApiError:
    return BedrockApiError(400, message)


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"Malformed input request: {where} must be an object")
    return value


def _parts(blocks: object, where: str) -> tuple[list[dict[str, Any]], set[str], set[str]]:
    """OpenAI-style parts (for the shared estimates), toolUse ids, toolResult ids."""
    if not isinstance(blocks, list) or not blocks:
        raise _invalid(f"Malformed input request: {where}.content must be a non-empty array")
    parts: list[dict[str, Any]] = []
    uses: set[str] = set()
    results: set[str] = set()
    for index, block in enumerate(blocks):
        block = _object(block, f"{where}.content[{index}]")
        unknown = set(block) - _BLOCKS
        if len(block) != 1 or unknown:
            raise _invalid(f"Malformed input request: {where}.content[{index}]: one member of "
                           f"{sorted(_BLOCKS)} expected, got {sorted(block)}")  # fmt: skip
        if "text" in block:
            if not isinstance(block["text"], str) or not block["text"].strip():
                raise _invalid("The text field in the ContentBlock object is blank.")
            parts.append({"type": "text", "text": block["text"]})
        elif "toolUse" in block:
            uses.add(str(block["toolUse"].get("toolUseId")))
            parts.append({"type": "text", "text": orjson.dumps(block["toolUse"]).decode()})
        elif "toolResult" in block:
            results.add(str(block["toolResult"].get("toolUseId")))
            parts.append({"type": "text", "text": orjson.dumps(block["toolResult"]).decode()})
        else:
            parts.append({"type": "image_url"})  # counted as one media part
    return parts, uses, results


def _messages(body: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _invalid("A conversation must start with a user message.")
    messages: list[dict[str, Any]] = []
    for index, system in enumerate(body.get("system") or []):
        text = _object(system, f"system[{index}]").get("text")
        if isinstance(text, str):
            messages.append({"role": "system", "content": text})
    previous_uses: set[str] = set()
    tools_used = False
    for index, message in enumerate(raw):
        message = _object(message, f"messages[{index}]")
        role = message.get("role")
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            raise _invalid(
                "A conversation must start with a user message and alternate between user "
                f"and assistant roles (messages[{index}] is {role!r})."
            )
        parts, uses, results = _parts(message.get("content"), f"messages[{index}]")
        if results - previous_uses:
            raise _invalid(
                "The toolUseId of a toolResult must match a toolUse of the previous turn: "
                f"{sorted(results - previous_uses)}"
            )
        tools_used = tools_used or bool(uses or results)
        previous_uses = uses
        messages.append({"role": role, "content": parts})
    return messages, tools_used


def _functions(config: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    functions = []
    for index, tool in enumerate(config.get("tools") or []):
        spec = _object(_object(tool, f"tools[{index}]").get("toolSpec"), f"tools[{index}].toolSpec")
        schema = _object(spec.get("inputSchema"), f"tools[{index}].toolSpec.inputSchema")
        if not isinstance(spec.get("name"), str) or "json" not in schema:
            raise _invalid(f"Malformed input request: tools[{index}].toolSpec needs name, json")
        functions.append({"name": spec["name"], "parameters": schema["json"]})
    return tuple(functions)


def _tool_choice(config: dict[str, Any]) -> str | dict[str, Any] | None:
    choice = config.get("toolChoice")
    if choice is None:
        return None
    choice = _object(choice, "toolConfig.toolChoice")
    if "auto" in choice:
        return "auto"
    if "any" in choice:
        return "required"
    name = _object(choice.get("tool"), "toolConfig.toolChoice.tool").get("name")
    return {"type": "function", "function": {"name": name}}


def parse_converse_request(body: dict[str, Any], model: str, stream: bool) -> ChatRequest:
    unknown = sorted(set(body) - _TOP_LEVEL)
    if unknown:
        raise _invalid(f"Malformed input request: extraneous key [{unknown[0]}] is not permitted")
    inference = _object(body.get("inferenceConfig") or {}, "inferenceConfig")
    extra = sorted(set(inference) - _INFERENCE)
    if extra:
        raise _invalid(f"Malformed input request: extraneous key [{extra[0]}] is not permitted")
    messages, tools_used = _messages(body)
    config = _object(body.get("toolConfig") or {}, "toolConfig")
    if tools_used and not config.get("tools"):
        raise _invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    limit = inference.get("maxTokens")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise _invalid("The maximum tokens you requested must be a positive integer.")
    stop = inference.get("stopSequences") or []
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=True,
        max_tokens=limit,
        stop=tuple(item for item in stop if isinstance(item, str) and item),
        functions=_functions(config),
        tool_choice=_tool_choice(config),
    )
