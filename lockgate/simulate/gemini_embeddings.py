"""Gemini embeddings: `:batchEmbedContents` (Gemini API) and `:predict` (Vertex AI).

Vectors are the simulator's deterministic unit vectors for the text (same text and size, same
vector). Vertex answers report a token count per input (characters / 4), the Gemini API none.
"""

from __future__ import annotations

from typing import Any

from lockgate.simulate.embeddings import MAX_DIMENSIONS
from lockgate.simulate.gemini_errors import invalid_argument
from lockgate.simulate.gemini_request import camel, unknown_field
from lockgate.simulate.vectors import embedding_vector

__all__ = ["batch_embed_payload", "predict_payload"]

_EMBED_FIELDS = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})


def _dimensions(value: object, default: int, where: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSIONS:
        raise invalid_argument(f"Invalid value at '{where}': expected 1 to {MAX_DIMENSIONS}.")
    return value


def _text(content: object, where: str) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    texts = [
        p["text"] for p in parts or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]
    if not texts:
        raise invalid_argument(f"* BatchEmbedContentsRequest.{where}.content: must hold text parts")
    return " ".join(texts)


def batch_embed_payload(body: dict[str, Any], model: str, default_dims: int) -> dict[str, Any]:
    """`{"embeddings": [{"values": [...]}]}` for a `batchEmbedContents` body."""
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise invalid_argument("* BatchEmbedContentsRequest.requests: requests is not specified")
    embeddings = []
    for index, entry in enumerate(requests):
        where = f"requests[{index}]"
        if not isinstance(entry, dict):
            raise invalid_argument(f"Invalid value at '{where}': expected an object")
        entry = {camel(key): value for key, value in entry.items()}
        for key in entry:
            if key not in _EMBED_FIELDS:
                raise unknown_field(key, where)
        if entry.get("model") != f"models/{model}":
            raise invalid_argument(
                f"* BatchEmbedContentsRequest.{where}.model: the model of each request must "
                f"match the batch model models/{model}"
            )
        dims = _dimensions(entry.get("outputDimensionality"), default_dims, where)
        vector = embedding_vector(_text(entry.get("content"), where), dims)
        embeddings.append({"values": vector.tolist()})
    return {"embeddings": embeddings}


def predict_payload(body: dict[str, Any], default_dims: int) -> dict[str, Any]:
    """Vertex AI text-embedding `predict` answer for `{"instances": [...], "parameters"}`."""
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise invalid_argument("instances must be a non-empty list")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise invalid_argument("Invalid value at 'parameters': expected an object")
    dims = _dimensions(parameters.get("outputDimensionality"), default_dims, "parameters")
    predictions = []
    characters = 0
    for index, instance in enumerate(instances):
        content = instance.get("content") if isinstance(instance, dict) else None
        if not isinstance(content, str):
            raise invalid_argument(f"instances[{index}].content must be a string")
        characters += len(content)
        statistics = {"truncated": False, "token_count": max(1, -(-len(content) // 4))}
        vector = embedding_vector(content, dims)
        predictions.append({"embeddings": {"statistics": statistics, "values": vector.tolist()}})
    return {"predictions": predictions, "metadata": {"billableCharacterCount": characters}}
