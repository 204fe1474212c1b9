"""OpenAI chat `messages` -> Gemini `contents` (roles user/model) and `systemInstruction`.

- system and developer messages, wherever they appear, become `systemInstruction` parts (Gemini
  has one system instruction per request);
- user content parts: text; `image_url` as a data URL -> `inlineData`, as an http(s) or gs:// URL
  -> `fileData` by reference (the gateway never downloads it; the provider must be able to fetch
  it); `input_audio` -> `inlineData`; `file` with `file_data` -> `inlineData` (`file_id` refers to
  OpenAI's file store and is refused);
- assistant `tool_calls` -> `functionCall` parts (a Gemini thought signature that the client sent
  back in `extra_content.google.thought_signature` is restored);
- tool messages -> `functionResponse` parts, named after the earlier call with that id;
- consecutive messages of the same Gemini role are merged into one content; empty ones vanish.
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from lockgate.errors import BadRequest
from lockgate.providers.translate import tool_arguments

__all__ = ["translate_messages"]

Part = dict[str, Any]
# Gemini needs a MIME type for media passed by URL; guessed from the extension, else this.
DEFAULT_IMAGE_MIME = "image/jpeg"
_AUDIO_MIME = {"mp3": "audio/mp3", "wav": "audio/wav"}


def translate_messages(
    messages: list[dict[str, Any]], provider: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(contents, systemInstruction or None) for a canonical `messages` list."""
    system: list[Part] = []
    contents: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}  # tool_call id -> function name
    for index, message in enumerate(messages):
        role = message.get("role")
        where = f"messages[{index}]"
        if role in ("system", "developer"):
            system += _text_parts(message.get("content"))
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), where, provider))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(message, where, tool_names))
        elif role in ("tool", "function"):
            _append(contents, "user", [_function_response(message, where, tool_names)])
    return contents, ({"parts": system} if system else None)


def _append(contents: list[dict[str, Any]], role: str, parts: list[Part]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _text_parts(content: object) -> list[Part]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[Part] = []
    for part in content if isinstance(content, list) else []:
        text = part.get("text", part.get("refusal")) if isinstance(part, dict) else None
        if isinstance(text, str) and text:
            parts.append({"text": text})
    return parts


def _user_parts(content: object, where: str, provider: str) -> list[Part]:
    if not isinstance(content, list):
        return _text_parts(content)
    parts: list[Part] = []
    for number, part in enumerate(content):
        at = f"{where}.content[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and part["text"]:
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_image(part["image_url"]["url"], f"{at}.image_url.url", provider))
        elif kind == "input_audio":
            audio = part["input_audio"]
            mime = _AUDIO_MIME.get(audio["format"], f"audio/{audio['format']}")
            parts.append({"inlineData": {"mimeType": mime, "data": audio["data"]}})
        elif kind == "file":
            parts.append(_file(part["file"], f"{at}.file", provider))
        elif kind == "refusal" and part["refusal"]:
            parts.append({"text": part["refusal"]})
    return parts


def _image(url: str, where: str, provider: str) -> Part:
    if url.startswith("data:"):
        mime, data = _data_url(url, where)
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("https://", "http://", "gs://")):
        guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
        return {"fileData": {"mimeType": guessed or DEFAULT_IMAGE_MIME, "fileUri": url}}
    raise BadRequest(
        f"Image URLs for provider '{provider}' must be data:, https:// or gs:// URLs", param=where
    )


def _file(file: dict[str, Any], where: str, provider: str) -> Part:
    data = file.get("file_data")
    if isinstance(data, str) and data.startswith("data:"):
        mime, encoded = _data_url(data, f"{where}.file_data")
        return {"inlineData": {"mimeType": mime, "data": encoded}}
    if isinstance(data, str):
        filename = file.get("filename")
        guessed = mimetypes.guess_type(filename)[0] if isinstance(filename, str) else None
        return {"inlineData": {"mimeType": guessed or "application/pdf", "data": data}}
    raise BadRequest(
        f"Files for provider '{provider}' must be sent inline as file_data "
        "(file_id refers to OpenAI's file store)",
        param=f"{where}.file_id",
        code="unsupported_parameter",
    )


def _data_url(url: str, where: str) -> tuple[str, str]:
    header, sep, data = url.partition(",")
    mime, _, encoding = header[len("data:") :].partition(";")
    if not sep or encoding != "base64" or not mime or not data:
        raise BadRequest("Expected a data URL of the form data:<mime>;base64,<data>", param=where)
    return mime, data


def _assistant_parts(message: dict[str, Any], where: str, tool_names: dict[str, str]) -> list[Part]:
    parts = _text_parts(message.get("content"))
    for number, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        tool_names[call["id"]] = function["name"]
        part: Part = {
            "functionCall": {
                "name": function["name"],
                "args": tool_arguments(function["arguments"], f"{where}.tool_calls[{number}]"),
            }
        }
        signature = _thought_signature(call)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _thought_signature(call: dict[str, Any]) -> str | None:
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) else None


def _function_response(message: dict[str, Any], where: str, tool_names: dict[str, str]) -> Part:
    if message.get("role") == "function":
        name = message.get("name")
        param = f"{where}.name"
    else:
        name = tool_names.get(message.get("tool_call_id") or "")
        param = f"{where}.tool_call_id"
    if not isinstance(name, str) or not name:
        raise BadRequest(
            "A tool message must answer a tool call of an earlier assistant message "
            "(no call with that id)",
            param=param,
        )
    text = "".join(part["text"] for part in _text_parts(message.get("content")))
    return {"functionResponse": {"name": name, "response": _response_object(text)}}


def _response_object(text: str) -> dict[str, Any]:
    """Gemini wants an object: a JSON object result as is, anything else under `result`."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}
