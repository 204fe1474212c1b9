"""An Anthropic Messages request, validated with msgspec so errors name the offending field.

Only what the translation reads is declared; unknown fields are tolerated here (an Anthropic
target receives the body untouched) and judged by `request.py` when the body must be translated.

Content blocks are validated one by one (`block`, `source`) rather than as a tagged union, so a
block type or source type the gateway does not know (`server_tool_use`, `web_search_tool_result`,
`search_result`, an image from the Files API, types Anthropic adds later) is accepted as `Opaque`:
it stays in the raw body for an Anthropic target, and only a translated attempt refuses it. A block
type the gateway does know is validated strictly, and a malformed field is a 400 naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast

import msgspec

from lockgate.errors import BadRequest
from lockgate.schemas.names import ModelName

__all__ = [
    "AnyChoice",
    "Base64Source",
    "Block",
    "DocumentBlock",
    "ImageBlock",
    "Message",
    "MessagesRequest",
    "NoneChoice",
    "Opaque",
    "Source",
    "TextBlock",
    "ToolNameChoice",
    "ToolResultBlock",
    "ToolUseBlock",
    "URLSource",
    "block",
    "source",
]

T = TypeVar("T")

RawBlock = dict[str, Any]
"""A content block as the client sent it; `block` reads it."""


class TextBlock(msgspec.Struct, tag="text", tag_field="type"):
    text: str


class Base64Source(msgspec.Struct, tag="base64", tag_field="type"):
    media_type: str
    data: str


class URLSource(msgspec.Struct, tag="url", tag_field="type"):
    url: str


class ImageBlock(msgspec.Struct, tag="image", tag_field="type"):
    source: RawBlock
    """Read with `source`: base64 and url sources are validated, other types are opaque."""


class DocumentBlock(msgspec.Struct, tag="document", tag_field="type"):
    source: RawBlock
    """Read with `source`, as an image's."""


class ToolUseBlock(msgspec.Struct, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(msgspec.Struct, tag="tool_result", tag_field="type"):
    tool_use_id: str
    content: str | list[RawBlock] | None = None
    """Blocks are read with `block`, as a message's."""
    is_error: bool | None = None


@dataclass(frozen=True, slots=True)
class Opaque:
    """A block or source of a type the gateway does not read (`kind`); passed through as sent."""

    kind: str


Block = TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock | Opaque
Source = Base64Source | URLSource | Opaque

_BLOCKS: Mapping[str, type[Any]] = MappingProxyType(
    {
        "text": TextBlock,
        "image": ImageBlock,
        "document": DocumentBlock,
        "tool_use": ToolUseBlock,
        "tool_result": ToolResultBlock,
    }
)
_SOURCES: Mapping[str, type[Any]] = MappingProxyType({"base64": Base64Source, "url": URLSource})


def block(value: RawBlock, where: str) -> Block:
    """One content block at `where` (`messages[2].content[1]`): validated if its type is known."""
    return cast(Block, _typed(value, where, _BLOCKS))


def source(value: RawBlock, where: str) -> Source:
    """An image's or document's `source` at `where`: validated if its type is known."""
    return cast(Source, _typed(value, where, _SOURCES))


def _typed(value: RawBlock, where: str, known: Mapping[str, type[Any]]) -> object:
    kind = value.get("type")
    if not isinstance(kind, str):
        param = f"{where}.type"
        problem = "missing required field" if kind is None else "expected a string"
        raise BadRequest(f"Invalid request: {problem} at '{param}'", param=param)
    struct = known.get(kind)
    return Opaque(kind) if struct is None else _convert(value, struct, where)


_PATH = re.compile(r" - at `\$(.*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def _convert(value: RawBlock, kind: type[T], where: str) -> T:
    """`value` as `kind`, or 400 naming the field under `where`, as `schemas.decode.validate`."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        param = where + (match.group(1) if match else "")
        message = _PATH.sub("", text)
        missing = _MISSING.search(text)
        if missing:
            param = f"{param}.{missing.group(1)}"
        else:
            message = f"{message} at '{param}'"
        raise BadRequest(f"Invalid request: {message}", param=param, code="invalid_type") from None


class Message(msgspec.Struct):
    role: Literal["user", "assistant"]
    content: str | list[RawBlock]
    """Blocks are read with `block`."""


class Tool(msgspec.Struct):
    name: str
    input_schema: dict[str, Any] | None = None
    description: str | None = None
    type: str | None = None
    """`custom` (or absent) for a client tool; anything else is one of Anthropic's server tools."""


class AutoChoice(msgspec.Struct, tag="auto", tag_field="type"):
    disable_parallel_tool_use: bool | None = None


class AnyChoice(msgspec.Struct, tag="any", tag_field="type"):
    disable_parallel_tool_use: bool | None = None


class ToolNameChoice(msgspec.Struct, tag="tool", tag_field="type"):
    name: str
    disable_parallel_tool_use: bool | None = None


class NoneChoice(msgspec.Struct, tag="none", tag_field="type"):
    pass


ToolChoice = AutoChoice | AnyChoice | ToolNameChoice | NoneChoice


class Metadata(msgspec.Struct):
    user_id: str | None = None


class MessagesRequest(msgspec.Struct):
    model: ModelName
    messages: list[Message]
    max_tokens: int
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    metadata: Metadata | None = None
