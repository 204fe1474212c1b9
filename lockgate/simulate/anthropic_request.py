"""Validating an Anthropic Messages request, as strictly as Anthropic does where it matters.

Unknown top-level fields, a missing `max_tokens`, roles other than user/assistant, a temperature
above 1, empty text blocks and `tool_use` blocks without their `tool_result` in the next message
are refused with Anthropic's 400, so a gateway that translates badly fails its tests here. The
valid request becomes the simulator's :class:`ChatRequest`, with OpenAI-like messages, so replies
are planned by the same machinery as for the OpenAI format.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from lockgate.simulate.anthropic_errors import invalid
from lockgate.simulate.chat_request import ChatRequest

__all__ = ["parse_messages_request"]

_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_config",
        "simulate",  # the simulator's own directives
    }
)
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_CHOICES: Mapping[str, str] = MappingProxyType({"auto": "auto", "any": "required", "none": "none"})
_ASSISTANT_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking"})
_BLOCK_TYPES = frozenset({"text", "image", "document", "tool_result", *_ASSISTANT_ONLY})

Message = dict[str, Any]


def parse_messages_request(body: dict[str, Any], model: str) -> ChatRequest:
    """Validate `body` (whose `model` was already read) into a :class:`ChatRequest`."""
    for name in body:
        if name not in _FIELDS:
            raise invalid(f"{name}: Extra inputs are not permitted")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise invalid("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise invalid("max_tokens: Input should be an integer greater than or equal to 1")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
        ):
            raise invalid(f"{name}: Input should be a number between 0 and 1")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("stream: Input should be a valid boolean")
    _metadata(body.get("metadata"))
    functions = _tools(body.get("tools"))
    return ChatRequest(
        model=model,
        messages=[*_system(body.get("system")), *_messages(body.get("messages"))],
        stream=bool(stream),
        max_tokens=max_tokens,
        stop=_stop_sequences(body.get("stop_sequences")),
        functions=functions,
        tool_choice=_tool_choice(body.get("tool_choice"), functions),
    )


def _messages(messages: object) -> list[Message]:
    if messages is None:
        raise invalid("messages: Field required")
    if not isinstance(messages, list):
        raise invalid("messages: Input should be a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    converted: list[Message] = []
    pending: list[str] = []  # tool_use ids the previous turn asked for
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise invalid(f"{where}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise invalid(f"{where}.role: Input should be 'user' or 'assistant'")
        last = i == len(messages) - 1
        blocks = _blocks(message.get("content"), where, role, may_be_empty=last)
        results = [block["tool_use_id"] for block in blocks if block["type"] == "tool_result"]
        missing = [call for call in pending if call not in results]
        if missing:
            raise _unanswered(i - 1, missing)
        unexpected = [result for result in results if result not in pending]
        if unexpected:
            raise invalid(
                f"{where}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{unexpected[0]}. Each `tool_result` block must have a corresponding `tool_use` "
                "block in the previous message."
            )
        pending = [block["id"] for block in blocks if block["type"] == "tool_use"]
        converted += _openai_like(role, blocks)
    if pending:
        raise _unanswered(len(messages) - 1, pending)
    return converted


def _unanswered(index: int, ids: list[str]) -> Exception:
    return invalid(
        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately "
        f"after: {', '.join(ids)}. Each `tool_use` block must have a corresponding `tool_result` "
        "block in the next message."
    )


def _blocks(content: object, where: str, role: str, *, may_be_empty: bool) -> list[Message]:
    if isinstance(content, str):
        blocks: list[Message] = [{"type": "text", "text": content}] if content else []
    elif isinstance(content, list):
        blocks = [_block(block, f"{where}.content.{j}", role) for j, block in enumerate(content)]
    else:
        raise invalid(f"{where}.content: Input should be a valid string or list of blocks")
    if not blocks and not (may_be_empty and role == "assistant"):
        raise invalid(
            f"{where}: all messages must have non-empty content except for the optional final "
            "assistant message"
        )
    return blocks


def _block(block: object, where: str, role: str) -> Message:
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(block, dict) or kind not in _BLOCK_TYPES:
        raise invalid(f"{where}: Input tag {kind!r} does not match any of the expected tags")
    if kind in _ASSISTANT_ONLY and role != "assistant":
        raise invalid(f"{where}: `{kind}` blocks are only allowed in assistant messages")
    if kind == "tool_result" and role != "user":
        raise invalid(f"{where}: `tool_result` blocks are only allowed in user messages")
    if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
        raise invalid("messages: text content blocks must be non-empty")
    if kind == "image":
        _image_source(block.get("source"), f"{where}.source")
    if kind == "tool_use" and not (
        isinstance(block.get("id"), str)
        and isinstance(block.get("name"), str)
        and isinstance(block.get("input"), dict)
    ):
        raise invalid(f"{where}: tool_use blocks need a string id and name and an object input")
    if kind == "tool_result" and not isinstance(block.get("tool_use_id"), str):
        raise invalid(f"{where}.tool_use_id: Field required")
    return block


def _image_source(source: object, where: str) -> None:
    kind = source.get("type") if isinstance(source, dict) else None
    if not isinstance(source, dict) or kind not in ("base64", "url"):
        raise invalid(f"{where}: Input should be a base64 or url image source")
    if kind == "url" and not isinstance(source.get("url"), str):
        raise invalid(f"{where}.url: Field required")
    if kind == "base64":
        if source.get("media_type") not in _IMAGE_TYPES:
            expected = ", ".join(f"'{media}'" for media in _IMAGE_TYPES)
            raise invalid(f"{where}.media_type: Input should be {expected}")
        if not isinstance(source.get("data"), str):
            raise invalid(f"{where}.data: Field required")


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b["text"] for b in content if isinstance(b, dict) and "text" in b)
    return ""


def _openai_like(role: str, blocks: list[Message]) -> list[Message]:
    """The simulator's view of one turn: tool results become `tool` messages, as in OpenAI."""
    if role == "assistant":
        texts = [block["text"] for block in blocks if block["type"] == "text"]
        calls = [
            {"function": {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()}}
            for b in blocks
            if b["type"] == "tool_use"
        ]
        return [{"role": "assistant", "content": " ".join(texts), "tool_calls": calls}]
    converted: list[Message] = [
        {"role": "tool", "content": _text_of(block.get("content"))}
        for block in blocks
        if block["type"] == "tool_result"
    ]
    parts = [
        {"type": "text", "text": block["text"]} if block["type"] == "text" else {"type": "media"}
        for block in blocks
        if block["type"] != "tool_result"
    ]
    if parts:
        converted.append({"role": "user", "content": parts})
    return converted


def _system(system: object) -> list[Message]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if isinstance(system, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in system
    ):
        return [{"role": "system", "content": system}]
    raise invalid("system: Input should be a valid string or a list of text blocks")


def _stop_sequences(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item for item in value if item)
    raise invalid("stop_sequences: Input should be a valid list of strings")


def _metadata(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise invalid("metadata: Input should be a valid dictionary")
    for name in value:
        if name != "user_id":
            raise invalid(f"metadata.{name}: Extra inputs are not permitted")


def _tools(tools: object) -> tuple[dict[str, Any], ...]:
    """The client tools as OpenAI-like function definitions (server tools are never called)."""
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list")
    functions: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"tools.{i}: Input should be a valid dictionary")
        if tool.get("type", "custom") != "custom":
            continue
        if not isinstance(tool.get("name"), str):
            raise invalid(f"tools.{i}.custom.name: Field required")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise invalid(f"tools.{i}.custom.input_schema: Input should be an object schema")
        functions.append(
            {"name": tool["name"], "description": tool.get("description"), "parameters": schema}
        )
    return tuple(functions)


def _tool_choice(choice: object, functions: tuple[dict[str, Any], ...]) -> str | Message | None:
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or kind not in (*_CHOICES, "tool"):
        raise invalid("tool_choice: Input should be an object of type auto, any, tool or none")
    if not functions:
        raise invalid("tool_choice: may only be specified while providing tools")
    parallel = choice.get("disable_parallel_tool_use")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid("tool_choice.disable_parallel_tool_use: Input should be a valid boolean")
    if kind != "tool":
        return _CHOICES[str(kind)]
    name = choice.get("name")
    if not isinstance(name, str):
        raise invalid("tool_choice.tool.name: Field required")
    return {"type": "function", "function": {"name": name}}
