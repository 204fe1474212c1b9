"""The Gemini wire protocol, through the Gemini API (API key) or Vertex AI (access token).

Gemini API: `POST {base_url}/v1beta/models/{model}:generateContent` (streaming:
`:streamGenerateContent?alt=sse`, embeddings: `:batchEmbedContents`), key in `x-goog-api-key`,
never in the URL, so a logged URL cannot leak it. Vertex AI:
`POST {base_url}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:...`
with `Authorization: Bearer <token>` (embeddings: `:predict`). The model is percent-encoded into
the path, so a name holding `/`, `?` or `#` cannot change the URL's meaning (the simulator reads
its directives from such a name: `sim-small?status=500`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from lockgate.errors import GatewayError
from lockgate.providers.base import UpstreamRequest
from lockgate.providers.gemini.embeddings import embeddings_body, embeddings_list
from lockgate.providers.gemini.errors import gemini_error, parse_error_body
from lockgate.providers.gemini.request import chat_body
from lockgate.providers.gemini.response import chat_completion
from lockgate.providers.gemini.stream import GeminiStreamParser

__all__ = ["GEMINI_BASE_URL", "GeminiAdapter", "VertexLocation", "vertex_base_url"]

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"


@dataclass(frozen=True, slots=True)
class VertexLocation:
    project: str
    location: str


def vertex_base_url(location: str) -> str:
    """Vertex AI's endpoint for a region (`global` has no regional prefix)."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def _segment(value: str) -> str:
    return quote(value, safe="@")


class GeminiAdapter:
    """One Gemini account: the Gemini API, or Vertex AI when `vertex` is given."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        *,
        vertex: VertexLocation | None = None,
        extra_headers: Mapping[str, str] | None = None,
        drop_unsupported: bool = False,
    ) -> None:
        self.name = name
        self._secret = api_key
        self._vertex = vertex is not None
        self._drop = drop_unsupported
        if vertex is None:
            self._prefix = f"{base_url}/v1beta/models/"
            auth = {"x-goog-api-key": api_key} if api_key else {}
        else:
            self._prefix = (
                f"{base_url}/v1/projects/{_segment(vertex.project)}/locations/"
                f"{_segment(vertex.location)}/publishers/google/models/"
            )
            auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers = {"content-type": "application/json", **auth, **(extra_headers or {})}

    def _url(self, model: str, method: str) -> str:
        if not self._vertex:
            model = model.removeprefix("models/")
        return f"{self._prefix}{_segment(model)}:{method}"

    def chat_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        body["model"] = model  # later stages (stream parser, logs) see the upstream model
        payload = chat_body(body, self.name, self._drop)
        if body.get("stream") is True:
            url = self._url(model, "streamGenerateContent") + "?alt=sse"
        else:
            url = self._url(model, "generateContent")
        return UpstreamRequest(url, self._headers, orjson.dumps(payload))

    def embeddings_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        body["model"] = model
        payload = embeddings_body(body, model, self.name, self._drop, vertex=self._vertex)
        method = "predict" if self._vertex else "batchEmbedContents"
        return UpstreamRequest(self._url(model, method), self._headers, orjson.dumps(payload))

    def chat_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        """`request` names the model if the answer does not."""
        model = str(request.get("model", ""))
        return chat_completion(body, self.name, model)

    def embeddings_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        """`request` supplies `encoding_format`, the model and a token estimate."""
        return embeddings_list(body, self.name, request)

    def stream_parser(self, body: dict[str, Any]) -> GeminiStreamParser:
        options = body.get("stream_options")
        return GeminiStreamParser(
            provider=self.name,
            model=str(body.get("model", "")),
            n=body.get("n") or 1,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            error=self._mapped,
        )

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        return gemini_error(self.name, self._secret, status, headers, parse_error_body(body))

    def _mapped(self, status: int, error: Mapping[str, Any]) -> GatewayError:
        return gemini_error(self.name, self._secret, status, {}, error)
