"""OpenAI chat messages -> Cohere v2 `messages`.

Cohere's roles are OpenAI's (`developer` becomes `system`), so messages keep their order and
role. Content strings pass as they are; content parts become Cohere's: text (and refusal) parts
`{"type": "text"}`, `image_url` parts `{"type": "image_url", "image_url": {"url", "detail"}}` in
user messages (https URLs or base64 data URLs, as Cohere's vision models take them). Assistant
`tool_calls` keep their shape (arguments stay a JSON string); tool messages keep
`tool_call_id`. Audio and file parts, images outside user messages and unknown roles follow the
unsupported-parameter rule.
"""

from __future__ import annotations

import logging
from typing import Any

from lockgate.errors import BadRequest, UnsupportedParameter
from lockgate.providers.translate import tool_call_id

__all__ = ["convert_messages"]

log = logging.getLogger("lockgate.providers")

Part = dict[str, Any]
_IMAGE_DETAILS = frozenset({"auto", "low", "high"})


class _Context:
    __slots__ = ("drop", "provider")

    def __init__(self, provider: str, drop: bool) -> None:
        self.provider = provider
        self.drop = drop

    def unsupported(self, param: str) -> None:
        if not self.drop:
            raise UnsupportedParameter(param, self.provider)
        log.info("provider %r cannot honour %r: dropped it", self.provider, param)


def convert_messages(messages: list[Any], provider: str, drop: bool) -> list[dict[str, Any]]:
    """Cohere `messages` for OpenAI `messages`."""
    context = _Context(provider, drop)
    result: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            result.append({"role": "system", "content": _content(content, where, context)})
        elif role == "user":
            parts = _content(content, where, context, images=True)
            result.append({"role": "user", "content": parts})
        elif role == "assistant":
            result.append(_assistant(message, where, context))
        elif role == "tool":
            result.append(_tool(message, where, context))
        else:
            context.unsupported(f"{where}.role")
    return result


def _content(
    content: object, where: str, context: _Context, *, images: bool = False
) -> str | list[Part]:
    if isinstance(content, str) or content is None:
        return content or ""
    parts: list[Part] = []
    for j, part in enumerate(content if isinstance(content, list) else ()):
        kind = part.get("type")
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if isinstance(text, str) and text:
                parts.append({"type": "text", "text": text})
        elif kind == "image_url" and images:
            parts.append(_image(part.get("image_url"), f"{where}.content[{j}].image_url"))
        else:
            context.unsupported(f"{where}.content[{j}]")
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)  # the plain form every model takes
    return parts


def _image(image: object, param: str) -> Part:
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:")):
        raise BadRequest(f"'{param}.url' must be an https URL or a base64 data URL", param=param)
    result: dict[str, str] = {"url": url}
    detail = image.get("detail") if isinstance(image, dict) else None
    if detail in _IMAGE_DETAILS:
        result["detail"] = str(detail)
    return {"type": "image_url", "image_url": result}


def _assistant(message: dict[str, Any], where: str, context: _Context) -> dict[str, Any]:
    result: dict[str, Any] = {"role": "assistant"}
    content = _content(message.get("content"), where, context)
    calls = message.get("tool_calls") or []
    if not calls:
        result["content"] = content
    elif content:
        # Cohere refuses text content next to tool calls: that text is the turn's tool plan.
        result["tool_plan"] = content if isinstance(content, str) else _text_of(content)
    if calls:
        result["tool_calls"] = [
            _tool_call(call, f"{where}.tool_calls[{k}]") for k, call in enumerate(calls)
        ]
    return result


def _text_of(parts: list[dict[str, Any]]) -> str:
    return "".join(str(part.get("text", "")) for part in parts if part.get("type") == "text")


def _tool_call(call: dict[str, Any], where: str) -> dict[str, Any]:
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise BadRequest(f"'{where}.function.name' is required", param=f"{where}.function")
    arguments = function.get("arguments")
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {
            "name": function["name"],
            "arguments": arguments if isinstance(arguments, str) and arguments else "{}",
        },
    }


def _tool(message: dict[str, Any], where: str, context: _Context) -> dict[str, Any]:
    call_id = tool_call_id(message, where)
    content = _content(message.get("content"), where, context)
    # Cohere requires tool content; an empty result still answers the call.
    return {"role": "tool", "tool_call_id": call_id, "content": content or "(empty)"}
