"""`type: local-embeddings`: sentence-transformers models run inside the gateway.

No upstream, no key: the semantic cache can embed prompts without sending them anywhere, and
clients get the same models on `/v1/embeddings`. Models load on first use (a few seconds); the
`embedders` map passed in is the process's (`Services`), so a reload does not load them again.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, NoReturn

import orjson

from lockgate.cache.local_embeddings import LocalEmbedder
from lockgate.errors import BadRequest, GatewayError
from lockgate.providers.base import StreamParser, UpstreamRequest

__all__ = ["LocalEmbeddingsAdapter"]

MAX_INPUTS = 256


class LocalEmbeddingsAdapter:
    def __init__(self, name: str, embedders: MutableMapping[str, LocalEmbedder]) -> None:
        self.name = name
        self._embedders = embedders

    async def local_embeddings(self, body: dict[str, Any], model: str) -> bytes:
        texts = _texts(body.get("input"))
        requested = body.get("encoding_format") or "float"
        if requested not in ("float", "base64"):
            raise BadRequest("'encoding_format' must be float or base64", param="encoding_format")
        encoding: Literal["float", "base64"] = "base64" if requested == "base64" else "float"
        try:
            embedder = self._embedder(model)
        except (ValueError, RuntimeError) as error:
            raise GatewayError(f"Provider '{self.name}': {error}", status=500) from None
        answer = await embedder.embeddings_response(
            texts, model=str(body.get("model") or model), encoding_format=encoding
        )
        return orjson.dumps(answer)

    def _embedder(self, model: str) -> LocalEmbedder:
        embedder = self._embedders.get(model)
        if embedder is None:
            embedder = self._embedders[model] = LocalEmbedder(model)
        return embedder

    def chat_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        self._embeddings_only()

    def embeddings_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        self._embeddings_only()  # the pipeline calls `local_embeddings` instead

    def chat_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        self._embeddings_only()

    def embeddings_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        return body

    def stream_parser(self, body: dict[str, Any]) -> StreamParser:
        self._embeddings_only()

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        return GatewayError(f"Provider '{self.name}' failed", status=500)

    def _embeddings_only(self) -> NoReturn:
        raise BadRequest(
            f"Provider '{self.name}' (local-embeddings) serves embeddings only", param="model"
        )


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        if len(value) > MAX_INPUTS:
            raise BadRequest(f"'input' holds more than {MAX_INPUTS} texts", param="input")
        return value
    raise BadRequest(
        "'input' must be a string or a non-empty list of strings (local models take text)",
        param="input",
    )
