"""OpenAI chat messages -> Converse's `system` blocks and alternating `messages`.

System and developer messages, wherever they stand, become `system` text blocks (in order).
Tool messages become `toolResult` blocks of a user turn; consecutive messages of one role merge
into one turn (Converse wants user and assistant to alternate). Empty text is left out: Converse
refuses blank text blocks. Images must be base64 data URLs: Converse takes image bytes (or S3
locations), never an https URL, so one is refused with 400 `unsupported_parameter`.
"""

from __future__ import annotations

import logging
from typing import Any

from lockgate.errors import BadRequest, UnsupportedParameter
from lockgate.providers.translate import tool_arguments, tool_call_id

__all__ = ["convert_messages"]

log = logging.getLogger("lockgate.providers")

Block = dict[str, Any]
IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})


class _Context:
    __slots__ = ("drop", "provider")

    def __init__(self, provider: str, drop: bool) -> None:
        self.provider = provider
        self.drop = drop

    def unsupported(self, param: str) -> None:
        if not self.drop:
            raise UnsupportedParameter(param, self.provider)
        log.info("provider %r cannot honour %r: dropped it", self.provider, param)


def convert_messages(
    messages: list[Any], provider: str, drop: bool
) -> tuple[list[Block], list[dict[str, Any]]]:
    """(`system`, `messages`) for Converse from OpenAI `messages`."""
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
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, blocks: list[Block]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _content_blocks(content: object, where: str, context: _Context, *, images: bool) -> list[Block]:
    if isinstance(content, str):
        return [{"text": content}] if content.strip() else []
    blocks: list[Block] = []
    for j, part in enumerate(content if isinstance(content, list) else ()):
        kind = part.get("type")
        text = part.get("text") if kind == "text" else part.get("refusal")
        if kind in ("text", "refusal"):
            if isinstance(text, str) and text.strip():
                blocks.append({"text": text})
        elif kind == "image_url" and images:
            param = f"{where}.content[{j}].image_url.url"
            image = _image(part["image_url"]["url"], param, context)
            if image is not None:
                blocks.append(image)
        else:
            context.unsupported(f"{where}.content[{j}]")
    return blocks


def _image(url: str, param: str, context: _Context) -> Block | None:
    if not url.startswith("data:"):
        if url.startswith(("https://", "http://")):
            context.unsupported(param)  # Converse takes image bytes, not URLs
            return None
        raise BadRequest(f"'{param}' must be a base64 data URL", param=param)
    header, comma, data = url[5:].partition(",")
    media_type, *options = header.split(";")
    kind, _, subtype = media_type.partition("/")
    if not comma or "base64" not in options or kind != "image" or not data:
        raise BadRequest(
            f"'{param}' must be a base64 data URL (data:image/png;base64,...)", param=param
        )
    image_format = "jpeg" if subtype == "jpg" else subtype
    if image_format not in IMAGE_FORMATS:
        raise BadRequest(
            f"Provider '{context.provider}' takes png, jpeg, gif or webp images, not {media_type}",
            param=param,
            code="unsupported_parameter",
        )
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _assistant_blocks(message: dict[str, Any], where: str, context: _Context) -> list[Block]:
    blocks = _content_blocks(message.get("content"), where, context, images=False)
    for k, call in enumerate(message.get("tool_calls") or ()):
        function = call["function"]
        tool_use = {
            "toolUseId": call["id"],
            "name": function["name"],
            "input": tool_arguments(function["arguments"], f"{where}.tool_calls[{k}]"),
        }
        blocks.append({"toolUse": tool_use})
    return blocks


def _tool_result(message: dict[str, Any], where: str, context: _Context) -> Block:
    call_id = tool_call_id(message, where)
    content = message.get("content")
    parts = _content_blocks(content, where, context, images=False)
    if not parts:
        parts = [{"text": "(empty)"}]  # Converse wants at least one content block
    return {"toolResult": {"toolUseId": call_id, "content": parts}}
