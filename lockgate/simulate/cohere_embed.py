"""Cohere's `POST /v2/embed`: `{"embeddings": {"float": [...]}, "texts", "meta"}`.

Vectors are the simulator's deterministic unit vectors for the text. `input_type` is required
(as for Cohere's v3+ models); `embedding_types` may ask for `float` (the default) and `base64`.
"""

from __future__ import annotations

import uuid
from typing import Any

from lockgate.simulate.cohere_request import CohereApiError
from lockgate.simulate.embeddings import MAX_DIMENSIONS
from lockgate.simulate.vectors import embedding_vector, encode_base64

__all__ = ["embed_payload"]

_FIELDS = frozenset(
    {"model", "texts", "images", "inputs", "input_type", "embedding_types", "output_dimension",
     "truncate", "max_tokens", "priority", "simulate"}
)  # fmt: skip
_INPUT_TYPES = frozenset(
    {"search_document", "search_query", "classification", "clustering", "image"}
)
_TYPES = frozenset({"float", "base64"})


def _invalid(message: str) -> CohereApiError:
    return CohereApiError(400, f"invalid request: {message}")


def embed_payload(body: dict[str, Any], default_dims: int) -> dict[str, Any]:
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _invalid(f"unknown field: parameter {unknown[0]} is not a valid field")
    texts = body.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise _invalid("texts must be a non-empty array of strings")
    if body.get("input_type") not in _INPUT_TYPES:
        raise _invalid(f"input_type must be one of {sorted(_INPUT_TYPES)}")
    types = body.get("embedding_types") or ["float"]
    if not isinstance(types, list) or not set(types) <= _TYPES:
        raise _invalid(f"embedding_types may hold {sorted(_TYPES)} in the simulator")
    dims = body.get("output_dimension", default_dims)
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= MAX_DIMENSIONS:
        raise _invalid(f"output_dimension must be between 1 and {MAX_DIMENSIONS}")
    vectors = [embedding_vector(text, dims) for text in texts]
    embeddings: dict[str, Any] = {}
    if "float" in types:
        embeddings["float"] = [vector.tolist() for vector in vectors]
    if "base64" in types:
        embeddings["base64"] = [encode_base64(vector) for vector in vectors]
    tokens = sum(max(1, -(-len(text) // 4)) for text in texts)
    return {
        "id": str(uuid.uuid4()),
        "embeddings": embeddings,
        "texts": texts,
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
        "response_type": "embeddings_by_type",
    }
