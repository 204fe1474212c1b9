"""Cohere's v2 API (`POST {base_url}/v2/chat`, `/v2/embed`), translated to and from OpenAI's.

Translation only (no I/O): `request.py` and `messages.py` build the chat body, `response.py`
and `stream.py` translate answers back, `embeddings.py` serves embeddings, `errors.py` maps
failures. Every request carries `Authorization: Bearer <api_key>`. See docs/providers.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from lockgate.errors import GatewayError
from lockgate.providers.base import UpstreamRequest
from lockgate.providers.cohere.embeddings import embed_body, embeddings_list
from lockgate.providers.cohere.errors import cohere_error, error_message
from lockgate.providers.cohere.request import chat_body
from lockgate.providers.cohere.response import chat_completion
from lockgate.providers.cohere.stream import CohereStreamParser

__all__ = ["COHERE_BASE_URL", "CohereAdapter"]

COHERE_BASE_URL = "https://api.cohere.com"


class CohereAdapter:
    """One Cohere account (or a private deployment speaking the same API)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        *,
        drop_unsupported: bool = False,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._secret = api_key
        self._drop = drop_unsupported
        base = base_url.rstrip("/")
        self._chat_url = f"{base}/v2/chat"
        self._embed_url = f"{base}/v2/embed"
        headers = {"content-type": "application/json", "accept": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        headers.update(extra_headers or {})
        self._headers = headers

    def chat_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        upstream = chat_body(body, model, self.name, self._drop)
        body["model"] = model  # later stages (stream parser, logs) see the upstream model
        return UpstreamRequest(self._chat_url, self._headers, orjson.dumps(upstream))

    def embeddings_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        upstream = embed_body(body, model, self.name, self._drop)
        body["model"] = model
        return UpstreamRequest(self._embed_url, self._headers, orjson.dumps(upstream))

    def chat_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        model = str(request.get("model", ""))
        return chat_completion(body, self.name, model, int(time.time()))

    def embeddings_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        return embeddings_list(body, self.name, request)

    def stream_parser(self, body: dict[str, Any]) -> CohereStreamParser:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        model = str(body.get("model", ""))
        return CohereStreamParser(self.name, model, include_usage, int(time.time()), self._scrub)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        """Map an upstream error answer; the message is kept, any credential in it is not."""
        message = self._scrub(error_message(body))
        return cohere_error(self.name, status, message, headers.get("retry-after"))

    def _scrub(self, text: str) -> str:
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text
