"""The Anthropic Messages protocol (`POST {base_url}/v1/messages`), translated to and from OpenAI's.

Translation only (no I/O): `request.py` builds the upstream body, `response.py` and `stream.py`
translate answers back, `errors.py` maps failures. See docs/providers.md for what survives.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NoReturn

import orjson

from lockgate.errors import BadRequest, GatewayError
from lockgate.providers.anthropic.errors import error_fields, map_error
from lockgate.providers.anthropic.request import messages_body
from lockgate.providers.anthropic.response import chat_completion
from lockgate.providers.anthropic.stream import AnthropicStreamParser
from lockgate.providers.base import UpstreamRequest

__all__ = ["ANTHROPIC_BASE_URL", "ANTHROPIC_VERSION", "AnthropicAdapter"]

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAdapter:
    """One Anthropic account: `x-api-key` and `anthropic-version` on every request."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        *,
        api_version: str = ANTHROPIC_VERSION,
        drop_unsupported: bool = False,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._secret = api_key
        self._drop = drop_unsupported
        self._url = f"{base_url.rstrip('/')}/v1/messages"
        headers = {"content-type": "application/json", "anthropic-version": api_version}
        if api_key:
            headers["x-api-key"] = api_key
        headers.update(extra_headers or {})
        self._headers = headers

    def chat_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        upstream = messages_body(body, model, self.name, self._drop)
        return UpstreamRequest(self._url, self._headers, orjson.dumps(upstream))

    def embeddings_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        self._no_embeddings()

    def native_messages_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        """A client's own Messages body, passed through with only `model` replaced."""
        return UpstreamRequest(self._url, self._headers, orjson.dumps({**body, "model": model}))

    def chat_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        return chat_completion(body, self.name, int(time.time()))

    def embeddings_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        self._no_embeddings()

    def stream_parser(self, body: dict[str, Any]) -> AnthropicStreamParser:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return AnthropicStreamParser(self.name, include_usage, int(time.time()), self._scrub)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        """Map an upstream error answer; the message is kept, any credential in it is not."""
        kind, message = error_fields(body)
        return map_error(self.name, status, kind, self._scrub(message), headers.get("retry-after"))

    def _no_embeddings(self) -> NoReturn:
        raise BadRequest(
            f"Provider '{self.name}' (anthropic) has no embeddings API: "
            "route embeddings models to another provider",
            param="model",
            code="unsupported_operation",
        )

    def _scrub(self, text: str) -> str:
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text
