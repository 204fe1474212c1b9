"""A canonical (OpenAI) chat request -> the body of Anthropic's `POST /v1/messages`.

The Anthropic body is built from the fields this module knows; nothing else is forwarded. A field
Anthropic cannot honour is refused with 400 `unsupported_parameter` (or dropped and logged with
`drop_unsupported`), unless it holds its no-op default (`n: 1`, `presence_penalty: 0`, ...), which
many clients send on every request. Fields that never change the answer (`store`, `metadata`,
`service_tier`, `prompt_cache_key`) are left out silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from lockgate.providers.anthropic.messages import convert_messages
from lockgate.providers.anthropic.tools import tool_fields
from lockgate.providers.params import reject_or_drop

__all__ = ["DEFAULT_MAX_TOKENS", "messages_body", "unsupported_fields"]

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires `max_tokens`; OpenAI clients often leave it out."""
MAX_TEMPERATURE = 1.0
"""Anthropic's temperature range is 0..1, OpenAI's 0..2: higher values are capped."""

_TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",  # not OpenAI's, but a common extra that Anthropic takes as is
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "user",
        "safety_identifier",
    }
)
_IGNORED = frozenset({"store", "metadata", "service_tier", "prompt_cache_key"})
_NO_OP: Mapping[str, Callable[[object], bool]] = MappingProxyType(
    {
        "n": lambda value: value == 1,
        "logprobs": lambda value: value is False,
        "presence_penalty": lambda value: value == 0,
        "frequency_penalty": lambda value: value == 0,
        "logit_bias": lambda value: value == {},
        "modalities": lambda value: value == ["text"],
    }
)


def unsupported_fields(body: Mapping[str, Any]) -> list[str]:
    """Fields of `body` Anthropic cannot honour, in request order."""
    return [
        name
        for name, value in body.items()
        if name not in _TRANSLATED
        and name not in _IGNORED
        and value is not None
        and not (name in _NO_OP and _NO_OP[name](value))
    ]


def messages_body(body: dict[str, Any], model: str, provider: str, drop: bool) -> dict[str, Any]:
    """The Anthropic request for `body` (which may lose unsupported fields when `drop`)."""
    reject_or_drop(body, unsupported_fields(body), provider, drop)
    system, messages = convert_messages(body["messages"], provider, drop)
    result: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(body)}
    if system is not None:
        result["system"] = system
    result["messages"] = messages
    temperature = body.get("temperature")
    if temperature is not None:
        result["temperature"] = min(float(temperature), MAX_TEMPERATURE)
    for name in ("top_p", "top_k"):
        if body.get(name) is not None:
            result[name] = body[name]
    stop = body.get("stop")
    if stop:
        sequences = [stop] if isinstance(stop, str) else [item for item in stop if item]
        if sequences:
            result["stop_sequences"] = sequences
    user = body.get("user") or body.get("safety_identifier")
    if user:
        result["metadata"] = {"user_id": user}
    result.update(tool_fields(body, provider, drop))
    if body.get("stream"):
        result["stream"] = True
    return result


def _max_tokens(body: Mapping[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return DEFAULT_MAX_TOKENS
