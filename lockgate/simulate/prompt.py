"""Deterministic prompt-side estimates: token counts and the text to echo back."""

from __future__ import annotations

from typing import Any

# Flat cost of a non-text content part (image, audio, file), like a low-detail image.
MEDIA_PART_TOKENS = 85
PER_MESSAGE_TOKENS = 3


def _content_size(content: object) -> tuple[int, int]:
    """(text characters, non-text parts) of a message ``content`` value."""
    if isinstance(content, str):
        return len(content), 0
    chars = media = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str):
                chars += len(text)
            elif part.get("type") != "refusal":
                media += 1
    return chars, media


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """ceil(chars / 4) + 3 per message + a flat amount per image/audio part."""
    chars = media = 0
    for message in messages:
        text_chars, parts = _content_size(message.get("content"))
        chars += text_chars
        media += parts
        tool_calls = message.get("tool_calls")
        if isinstance(tool_calls, list):
            for call in tool_calls:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    chars += len(str(function.get("arguments", "")))
    return -(-chars // 4) + PER_MESSAGE_TOKENS * len(messages) + MEDIA_PART_TOKENS * media


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            ]
            return " ".join(texts)
        return ""
    return ""
