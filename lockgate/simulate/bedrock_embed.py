"""Bedrock InvokeModel bodies of embedding models: Amazon Titan and Cohere Embed.

The model id picks the shape, as on Bedrock:

- `amazon.titan-embed*`: `{"inputText", "dimensions", "normalize", "embeddingTypes"}` ->
  `{"embedding", "inputTextTokenCount", "embeddingsByType": {"float"}}`. One text per call;
  `dimensions` (Titan Text Embeddings V2 only) must be 256, 512 or 1024 (the default).
- `cohere.embed*`: `{"texts", "input_type", "truncate", "embedding_types"}` -> `{"embeddings",
  "id", "texts", "response_type"}`: a list of float vectors (`embeddings_floats`) without
  `embedding_types`, `{"float": [...]}` (`embeddings_by_type`) with `["float"]`. `input_type`
  is required, at most 96 texts of at most 2048 characters. Vectors have the simulator's
  `embedding_dims`.

Strict like the real API: an unknown field is 400 ValidationException. Vectors are the
simulator's deterministic unit vectors (same text and size, same vector); token counts are
characters / 4, rounded up.
"""

from __future__ import annotations

import uuid
from typing import Any

from lockgate.simulate.bedrock_request import BedrockApiError
from lockgate.simulate.vectors import embedding_vector

__all__ = ["invoke_payload", "is_embedding_model"]

TITAN_DIMENSIONS = (256, 512, 1024)
TITAN_V1_DIMENSIONS = 1536
COHERE_MAX_TEXTS = 96
COHERE_MAX_CHARACTERS = 2048
_TITAN_FIELDS = frozenset({"inputText", "dimensions", "normalize", "embeddingTypes", "simulate"})
_TITAN_V1_FIELDS = frozenset({"inputText", "simulate"})
_COHERE_FIELDS = frozenset({"texts", "input_type", "truncate", "embedding_types", "simulate"})
_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})


def _invalid(message: str) -> BedrockApiError:
    return BedrockApiError(400, message)


def _tokens(text: str) -> int:
    return max(1, -(-len(text) // 4))


def _no_extra(body: dict[str, Any], fields: frozenset[str]) -> None:
    unknown = sorted(set(body) - fields)
    if unknown:
        raise _invalid(f"Malformed input request: extraneous key [{unknown[0]}] is not permitted")


def is_embedding_model(model: str) -> bool:
    return "amazon.titan-embed" in model or "cohere.embed" in model


def invoke_payload(body: dict[str, Any], model: str, cohere_dims: int) -> dict[str, Any]:
    """The InvokeModel answer of embedding model `model` to `body`."""
    if "cohere.embed" in model:
        return _cohere(body, cohere_dims)
    return _titan(body, model)


def _titan(body: dict[str, Any], model: str) -> dict[str, Any]:
    v2 = "titan-embed-text-v2" in model
    _no_extra(body, _TITAN_FIELDS if v2 else _TITAN_V1_FIELDS)
    text = body.get("inputText")
    if not isinstance(text, str) or not text:
        raise _invalid("Malformed input request: #/inputText: expected minLength: 1")
    dims = body.get("dimensions", 1024) if v2 else TITAN_V1_DIMENSIONS
    if v2 and (isinstance(dims, bool) or dims not in TITAN_DIMENSIONS):
        raise _invalid(f"Malformed input request: #/dimensions: {dims} is not a valid enum value")
    if not isinstance(body.get("normalize", True), bool):
        raise _invalid("Malformed input request: #/normalize: expected type: Boolean")
    types = body.get("embeddingTypes", ["float"])
    if types != ["float"]:
        raise _invalid("Malformed input request: #/embeddingTypes: the simulator has float only")
    vector = embedding_vector(text, dims).tolist()
    return {
        "embedding": vector,
        "inputTextTokenCount": _tokens(text),
        "embeddingsByType": {"float": vector},
    }


def _cohere(body: dict[str, Any], dims: int) -> dict[str, Any]:
    _no_extra(body, _COHERE_FIELDS)
    texts = body.get("texts")
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise _invalid("Malformed input request: #/texts: expected type: JSONArray of strings")
    if not 1 <= len(texts) <= COHERE_MAX_TEXTS:
        raise _invalid(f"Malformed input request: #/texts: 1 to {COHERE_MAX_TEXTS} texts expected")
    if any(len(text) > COHERE_MAX_CHARACTERS for text in texts):
        raise _invalid(
            f"Malformed input request: #/texts: at most {COHERE_MAX_CHARACTERS} characters a text"
        )
    if body.get("input_type") not in _INPUT_TYPES:
        raise _invalid(f"Malformed input request: #/input_type: one of {sorted(_INPUT_TYPES)}")
    types = body.get("embedding_types")
    if types not in (None, ["float"]):
        raise _invalid("Malformed input request: #/embedding_types: the simulator has float only")
    vectors = [embedding_vector(text, dims).tolist() for text in texts]
    by_type = types is not None
    return {
        "embeddings": {"float": vectors} if by_type else vectors,
        "id": str(uuid.uuid4()),
        "response_type": "embeddings_by_type" if by_type else "embeddings_floats",
        "texts": texts,
    }
