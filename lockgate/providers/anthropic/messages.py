"""OpenAI chat messages -> Anthropic's top-level `system` and alternating `messages`.

System and developer messages, wherever they stand, become `system` (in order). Tool messages
become `tool_result` blocks of a user turn; consecutive messages of one role are merged into one
turn, so the tool results answering one assistant turn travel together, ahead of any user text
that follows them (Anthropic requires tool results first). Empty text is left out: Anthropic
refuses empty text blocks.
"""

from __future__ import annotations

import logging
from typing import Any

from lockgate.errors import BadRequest, UnsupportedParameter
from lockgate.providers.translate import tool_arguments, tool_call_id

__all__ = ["convert_messages"]

log = logging.getLogger("lockgate.providers")

Block = dict[str, Any]
System = str | list[Block] | None


class _Context:
    """Who is asking (for error messages) and whether untranslatable parts may be dropped."""

    __slots__ = ("drop", "provider")

    def __init__(self, provider: str, drop: bool) -> None:
        self.provider = provider
        self.drop = drop

    def unsupported(self, param: str) -> None:
        """Refuse `param`, or (with drop_unsupported) log that it is left out."""
        if not self.drop:
            raise UnsupportedParameter(param, self.provider)
        log.info("provider %r cannot honour %r: dropped it", self.provider, param)


def convert_messages(
    messages: list[Any], provider: str, drop: bool
) -> tuple[System, list[dict[str, Any]]]:
    """(`system`, `messages`) for Anthropic from OpenAI `messages`."""
    context = _Context(provider, drop)
    system: list[Block] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system += _content_blocks(content, where, context, images=False)
        elif role == "user":
            _append(turns, "user", _content_blocks(content, where, context, images=True))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, where, context))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, where, context)])
        else:
            context.unsupported(f"{where}.role")
    for turn in turns:
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    return _system(system), turns


def _system(blocks: list[Block]) -> System:
    if not blocks:
        return None
    if len(blocks) == 1:
        return str(blocks[0]["text"])
    return blocks


def _append(turns: list[dict[str, Any]], role: str, blocks: list[Block]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _content_blocks(content: object, where: str, context: _Context, *, images: bool) -> list[Block]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Block] = []
    for j, part in enumerate(content if isinstance(content, list) else ()):
        kind = part.get("type")
        text = part.get("text") if kind == "text" else part.get("refusal")
        if kind in ("text", "refusal"):
            if text:
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url" and images:
            url = part["image_url"]["url"]
            blocks.append(_source_block("image", url, f"{where}.content[{j}].image_url.url"))
        elif kind == "file" and images and _pdf_data(part.get("file")):
            url = part["file"]["file_data"]
            blocks.append(_source_block("document", url, f"{where}.content[{j}].file.file_data"))
        else:
            context.unsupported(f"{where}.content[{j}]")
    return blocks


def _pdf_data(file: object) -> bool:
    data = file.get("file_data") if isinstance(file, dict) else None
    return isinstance(data, str) and data.startswith("data:application/pdf;")


def _source_block(kind: str, url: str, param: str) -> Block:
    """An image (or PDF document) block from an https URL or a base64 data URL."""
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, *options = header.split(";")
        if not comma or "base64" not in options or not media_type:
            raise BadRequest(
                f"'{param}' must be a base64 data URL (data:image/png;base64,...) or an https URL",
                param=param,
            )
        return {"type": kind, "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": kind, "source": {"type": "url", "url": url}}
    raise BadRequest(f"'{param}' must be an https URL or a base64 data URL", param=param)


def _assistant_blocks(message: dict[str, Any], where: str, context: _Context) -> list[Block]:
    blocks = _content_blocks(message.get("content"), where, context, images=False)
    for k, call in enumerate(message.get("tool_calls") or ()):
        function = call["function"]
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": function["name"],
                "input": tool_arguments(function["arguments"], f"{where}.tool_calls[{k}]"),
            }
        )
    return blocks


def _tool_result(message: dict[str, Any], where: str, context: _Context) -> Block:
    call_id = tool_call_id(message, where)
    block: Block = {"type": "tool_result", "tool_use_id": call_id}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        parts = _content_blocks(content, where, context, images=True)
        if parts:
            block["content"] = parts
    return block
