"""Canonical embeddings request: OpenAI Embeddings, validated with msgspec."""

from __future__ import annotations

from typing import Literal

import msgspec

from lockgate.schemas.names import ModelName

__all__ = ["EmbeddingsRequest"]


class EmbeddingsRequest(msgspec.Struct):
    model: ModelName
    # msgspec allows one array type per union: texts, token ids and token-id lists share it.
    input: str | list[str | int | list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None
    user: str | None = None
