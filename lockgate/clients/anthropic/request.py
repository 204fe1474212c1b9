"""An Anthropic Messages request -> the canonical (OpenAI Chat Completions) request.

`system` becomes a system message; `tool_result` blocks become `tool` messages ahead of the rest
of their user turn; `tool_use` blocks become the assistant's `tool_calls`; images become
`image_url` parts (base64 sources as data URLs); base64 PDF documents become `file` parts.
`cache_control`, `thinking` blocks in the history, `is_error` and `service_tier` have no canonical
counterpart and are left out. What the translation cannot carry (top-level fields it does not know
such as `mcp_servers` or `container`, Anthropic's server tools, block types such as
`server_tool_use` or `search_result`, image sources other than base64 and url, documents other
than base64 PDFs) is not refused here: an Anthropic target takes the body as it is, and only a
translated attempt refuses it (`Translated.check`), naming its path (`messages[2].content[1]`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from lockgate.clients.anthropic import schema
from lockgate.clients.anthropic.schema import (
    AnyChoice,
    Base64Source,
    Block,
    DocumentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    NoneChoice,
    Opaque,
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
_THINKING = frozenset({"thinking", "redacted_thinking"})
"""Blocks of earlier answers' reasoning: left out silently (another model cannot read them)."""

Part = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Translated:
    """The canonical request, and what could not be put into it."""

    body: dict[str, Any]
    unsupported: tuple[str, ...] = ()
    """Paths of what only an Anthropic target can take: `mcp_servers`, `messages[2].content[1]`."""
    left_out: tuple[str, ...] = ()
    described: Mapping[str, str] = field(default_factory=dict)
    """What some of `unsupported` are, for the error message: `a 'server_tool_use' block`."""

    def check(self, provider: str) -> None:
        """Refuse a translated attempt on `provider` if the client asked for what it lacks."""
        if self.unsupported:
            param = self.unsupported[0]
            what = self.described.get(param)
            named = f"'{param}' ({what})" if what else f"'{param}'"
            raise BadRequest(
                f"{named} needs an Anthropic provider, but this request was routed to "
                f"provider '{provider}', which is served through translation",
                param=param,
                code="unsupported_parameter",
            )
        if self.left_out:
            log.info("left out %s translating for provider %r", ", ".join(self.left_out), provider)


def to_canonical(request: MessagesRequest, raw: dict[str, Any]) -> Translated:
    """The canonical chat request for `request` (`raw` is the body it was validated from).

    Raises `BadRequest` for a malformed block of a known type, whatever the target.
    """
    if not request.messages:
        raise BadRequest("'messages' must hold at least one message", param="messages")
    unsupported = _Unsupported()
    for name in raw:
        if name not in _TRANSLATED and name not in _LEFT_OUT:
            unsupported.add(name)
    body: dict[str, Any] = {"model": request.model, "messages": _messages(request, unsupported)}
    body["max_tokens"] = request.max_tokens
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop_sequences:
        body["stop"] = request.stop_sequences
    if request.metadata is not None and request.metadata.user_id:
        body["user"] = request.metadata.user_id
    _tools(request, body, unsupported)
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    left_out = tuple(name for name in raw if name in _LEFT_OUT)
    found = unsupported.found
    described = {param: what for param, what in found.items() if what}
    return Translated(body, tuple(found), left_out, described)


class _Unsupported:
    """What a translation could not carry, in order: param path -> what it is ("" for a field)."""

    __slots__ = ("found",)

    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    def add(self, param: str, what: str = "") -> None:
        self.found.setdefault(param, what)


def _messages(request: MessagesRequest, unsupported: _Unsupported) -> list[dict[str, Any]]:
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
            messages.append(_assistant(message, where, unsupported))
        else:
            messages += _user(message, where, unsupported)
    return messages


def _assistant(message: Message, where: str, unsupported: _Unsupported) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, raw in enumerate(message.content):
        at = f"{where}.content[{j}]"
        block = schema.block(raw, at)
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolUseBlock):
            arguments = orjson.dumps(block.input).decode()
            function = {"name": block.name, "arguments": arguments}
            calls.append({"id": block.id, "type": "function", "function": function})
        elif not (isinstance(block, Opaque) and block.kind in _THINKING):
            unsupported.add(at, _kind_of(block))
    result: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        result["tool_calls"] = calls
    return result


def _user(message: Message, where: str, unsupported: _Unsupported) -> list[dict[str, Any]]:
    """Tool results first (as `tool` messages), then the rest of the turn as one user message."""
    if isinstance(message.content, str):
        return [{"role": "user", "content": message.content}]
    results: list[dict[str, Any]] = []
    parts: list[Part] = []
    refused = len(unsupported.found)
    for j, raw in enumerate(message.content):
        at = f"{where}.content[{j}]"
        block = schema.block(raw, at)
        if isinstance(block, ToolResultBlock):
            results.append(_tool_result(block, at, unsupported))
        else:
            part = _part(block, at, unsupported)
            if part is not None:
                parts.append(part)
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        results.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
    elif not results and len(unsupported.found) > refused:
        # Nothing of the turn translates; keep its place so the canonical request still has a
        # message for routing. A translated attempt is refused (`Translated.check`) anyway.
        results.append({"role": "user", "content": ""})
    return results


def _tool_result(block: ToolResultBlock, where: str, unsupported: _Unsupported) -> dict[str, Any]:
    content = block.content
    if isinstance(content, list):
        parts = [
            _part(schema.block(raw, f"{where}.content[{k}]"), f"{where}.content[{k}]", unsupported)
            for k, raw in enumerate(content)
        ]
        texts = [part for part in parts if part is not None]
        if all(part["type"] == "text" for part in texts):
            content = "".join(part["text"] for part in texts)
        else:
            return {"role": "tool", "tool_call_id": block.tool_use_id, "content": texts}
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": content or ""}


def _part(block: Block, where: str, unsupported: _Unsupported) -> Part | None:
    """The canonical content part for one block of a user turn or a tool result.

    None for blocks left out (thinking) and for those recorded as unsupported.
    """
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        at = f"{where}.source"
        source = schema.source(block.source, at)
        if isinstance(source, URLSource):
            return {"type": "image_url", "image_url": {"url": source.url}}
        if isinstance(source, Base64Source):
            url = f"data:{source.media_type};base64,{source.data}"
            return {"type": "image_url", "image_url": {"url": url}}
        unsupported.add(at, f"an image source of type '{source.kind}'")
        return None
    if isinstance(block, DocumentBlock):
        return _document(block, where, unsupported)
    if isinstance(block, ToolUseBlock):
        raise BadRequest(f"'{where}': tool_use blocks belong to assistant turns", param=where)
    if not (isinstance(block, Opaque) and block.kind in _THINKING):
        unsupported.add(where, _kind_of(block))
    return None


def _document(block: DocumentBlock, where: str, unsupported: _Unsupported) -> Part | None:
    """A base64 PDF as a `file` part; other documents are recorded as unsupported."""
    at = f"{where}.source"
    source = schema.source(block.source, at)
    if isinstance(source, Base64Source) and source.media_type == "application/pdf":
        data = f"data:application/pdf;base64,{source.data}"
        return {"type": "file", "file": {"filename": "document.pdf", "file_data": data}}
    if isinstance(source, Base64Source):
        unsupported.add(at, f"a base64 document of type '{source.media_type}'")
    else:
        kind = "url" if isinstance(source, URLSource) else source.kind
        unsupported.add(at, f"a document source of type '{kind}'")
    return None


def _kind_of(block: Block) -> str:
    kind = block.kind if isinstance(block, Opaque) else type(block).__struct_config__.tag
    return f"a '{kind}' block"


def _tools(request: MessagesRequest, body: dict[str, Any], unsupported: _Unsupported) -> None:
    """Sets `tools`, `tool_choice` and `parallel_tool_calls`; records untranslatable tools."""
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(request.tools or ()):
        if tool.type not in (None, "custom"):
            unsupported.add(f"tools[{i}]", f"a server tool of type '{tool.type}'")
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
        return
    body["tools"] = tools
    if isinstance(choice, NoneChoice):
        body["tool_choice"] = "none"
        return
    if isinstance(choice, ToolNameChoice):
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    else:
        body["tool_choice"] = "required" if isinstance(choice, AnyChoice) else "auto"
    if choice.disable_parallel_tool_use:
        body["parallel_tool_calls"] = False
