"""An Anthropic Messages request -> the canonical (OpenAI Chat Completions) request.

`system` becomes a system message; `tool_result` blocks become `tool` messages ahead of the rest
of their user turn; `tool_use` blocks become the assistant's `tool_calls`; images become
`image_url` parts (base64 sources as data URLs); base64 PDF documents become `file` parts.
`cache_control`, `thinking` blocks in the history, `is_error` and `service_tier` have no canonical
counterpart and are left out. Top-level fields the translation does not know (Anthropic's server
tools, `mcp_servers`, `container`, ...) are not refused here: an Anthropic target takes the body
as it is, and only a translated attempt refuses them (`Translated.check`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from lockgate.clients.anthropic.schema import (
    AnyChoice,
    Block,
    DocumentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    NoneChoice,
    TextBlock,
    ToolNameChoice,
    ToolResultBlock,
    ToolUseBlock,
    URLSource,
)
from lockgate.errors import BadRequest

__all__ = ["Translated", "to_canonical"]

log = logging.getLogger("lockgate.clients")

_TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
    }
)
_LEFT_OUT = frozenset({"thinking", "service_tier", "cache_control"})
"""Hints any model can answer without: left out (and logged) when the body is translated."""

Part = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Translated:
    """The canonical request, and what could not be put into it."""

    body: dict[str, Any]
    unsupported: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()

    def check(self, provider: str) -> None:
        """Refuse a translated attempt on `provider` if the client asked for what it lacks."""
        if self.unsupported:
            param = self.unsupported[0]
            raise BadRequest(
                f"'{param}' needs an Anthropic provider, but this request was routed to "
                f"provider '{provider}', which is served through translation",
                param=param,
                code="unsupported_parameter",
            )
        if self.left_out:
            log.info("left out %s translating for provider %r", ", ".join(self.left_out), provider)


def to_canonical(request: MessagesRequest, raw: dict[str, Any]) -> Translated:
    """The canonical chat request for `request` (`raw` is the body it was validated from)."""
    if not request.messages:
        raise BadRequest("'messages' must hold at least one message", param="messages")
    body: dict[str, Any] = {"model": request.model, "messages": _messages(request)}
    body["max_tokens"] = request.max_tokens
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop_sequences:
        body["stop"] = request.stop_sequences
    if request.metadata is not None and request.metadata.user_id:
        body["user"] = request.metadata.user_id
    unsupported = [name for name in raw if name not in _TRANSLATED and name not in _LEFT_OUT]
    unsupported += _tools(request, body)
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    left_out = tuple(name for name in raw if name in _LEFT_OUT)
    return Translated(body, tuple(unsupported), left_out)


def _messages(request: MessagesRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = request.system
    if isinstance(system, str):
        if system:
            messages.append({"role": "system", "content": system})
    elif system:
        parts = [{"type": "text", "text": block.text} for block in system]
        content = parts[0]["text"] if len(parts) == 1 else parts
        messages.append({"role": "system", "content": content})
    for i, message in enumerate(request.messages):
        where = f"messages[{i}]"
        if message.role == "assistant":
            messages.append(_assistant(message))
        else:
            messages += _user(message, where)
    return messages


def _assistant(message: Message) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    texts = [block.text for block in message.content if isinstance(block, TextBlock)]
    calls = [
        {
            "id": block.id,
            "type": "function",
            "function": {"name": block.name, "arguments": orjson.dumps(block.input).decode()},
        }
        for block in message.content
        if isinstance(block, ToolUseBlock)
    ]
    result: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        result["tool_calls"] = calls
    return result


def _user(message: Message, where: str) -> list[dict[str, Any]]:
    """Tool results first (as `tool` messages), then the rest of the turn as one user message."""
    if isinstance(message.content, str):
        return [{"role": "user", "content": message.content}]
    results: list[dict[str, Any]] = []
    parts: list[Part] = []
    for j, block in enumerate(message.content):
        if isinstance(block, ToolResultBlock):
            results.append(_tool_result(block, f"{where}.content[{j}]"))
        else:
            part = _part(block, f"{where}.content[{j}]")
            if part is not None:
                parts.append(part)
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        results.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
    return results


def _tool_result(block: ToolResultBlock, where: str) -> dict[str, Any]:
    content = block.content
    if isinstance(content, list):
        parts = [_part(item, f"{where}.content[{k}]") for k, item in enumerate(content)]
        texts = [part for part in parts if part is not None]
        if all(part["type"] == "text" for part in texts):
            content = "".join(part["text"] for part in texts)
        else:
            return {"role": "tool", "tool_call_id": block.tool_use_id, "content": texts}
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": content or ""}


def _part(block: Block, where: str) -> Part | None:
    """The canonical content part for one block; None for blocks left out (thinking)."""
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        source = block.source
        if isinstance(source, URLSource):
            url = source.url
        else:
            url = f"data:{source.media_type};base64,{source.data}"
        return {"type": "image_url", "image_url": {"url": url}}
    if isinstance(block, DocumentBlock):
        return _document(block, where)
    if isinstance(block, ToolUseBlock):
        raise BadRequest(f"'{where}': tool_use blocks belong to assistant turns", param=where)
    return None


def _document(block: DocumentBlock, where: str) -> Part:
    source = block.source
    if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
        data = f"data:application/pdf;base64,{source.get('data', '')}"
        return {"type": "file", "file": {"filename": "document.pdf", "file_data": data}}
    raise BadRequest(
        f"'{where}.source': only base64 PDF documents can be translated for this model",
        param=f"{where}.source",
        code="unsupported_parameter",
    )


def _tools(request: MessagesRequest, body: dict[str, Any]) -> list[str]:
    """Sets `tools`, `tool_choice` and `parallel_tool_calls`; returns untranslatable tools."""
    unsupported: list[str] = []
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(request.tools or ()):
        if tool.type not in (None, "custom"):
            unsupported.append(f"tools[{i}]")
            continue
        function: dict[str, Any] = {"name": tool.name}
        if tool.description:
            function["description"] = tool.description
        function["parameters"] = tool.input_schema or {"type": "object", "properties": {}}
        tools.append({"type": "function", "function": function})
    choice = request.tool_choice
    if not tools or choice is None:
        if tools:
            body["tools"] = tools
        return unsupported
    body["tools"] = tools
    if isinstance(choice, NoneChoice):
        body["tool_choice"] = "none"
        return unsupported
    if isinstance(choice, ToolNameChoice):
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    else:
        body["tool_choice"] = "required" if isinstance(choice, AnyChoice) else "auto"
    if choice.disable_parallel_tool_use:
        body["parallel_tool_calls"] = False
    return unsupported
