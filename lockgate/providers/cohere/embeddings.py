"""OpenAI embeddings <-> Cohere's `POST /v2/embed`.

Request: `input` (a string or a list of strings) -> `texts`, `dimensions` -> `output_dimension`,
`input_type` `search_document` unless the request names another (a Cohere extension field),
`embedding_types: ["float"]`. Token-id input cannot be served (Cohere takes text); `user` is
left out; any other parameter follows the unsupported-parameter rule. Response: the float
vectors as OpenAI's list, or base64 little-endian float32 when the request asked for
`encoding_format: base64` (the openai SDK's default). Usage: `meta.billed_units.input_tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lockgate.errors import BadRequest, UpstreamServerError
from lockgate.providers.params import reject_or_drop
from lockgate.providers.vectors import float32_base64

__all__ = ["DEFAULT_INPUT_TYPE", "embed_body", "embeddings_list"]

DEFAULT_INPUT_TYPE = "search_document"
_TRANSLATED = frozenset({"model", "input", "dimensions", "encoding_format", "input_type"})


def _texts(body: Mapping[str, Any], provider: str) -> list[str]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    raise BadRequest(
        f"Provider '{provider}' embeds text only: 'input' must be a string or a list of strings",
        param="input",
        code="unsupported_parameter",
    )


def embed_body(body: dict[str, Any], model: str, provider: str, drop: bool) -> dict[str, Any]:
    """The `/v2/embed` body for an OpenAI embeddings request."""
    body.pop("user", None)
    reject_or_drop(body, [k for k in body if k not in _TRANSLATED], provider, drop)
    input_type = body.get("input_type")
    request: dict[str, Any] = {
        "model": model,
        "texts": _texts(body, provider),
        "input_type": input_type if isinstance(input_type, str) else DEFAULT_INPUT_TYPE,
        "embedding_types": ["float"],
    }
    if body.get("dimensions") is not None:
        request["output_dimension"] = body["dimensions"]
    return request


def _vectors(answer: object, provider: str) -> list[list[float]]:
    embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
    if isinstance(embeddings, dict):  # response_type embeddings_by_type
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list) or not all(isinstance(v, list) for v in embeddings):
        raise UpstreamServerError(
            f"Provider '{provider}' answered with something that is not a Cohere embed response",
            code="upstream_invalid_response",
        )
    return embeddings


def embeddings_list(body: bytes, provider: str, request: Mapping[str, Any]) -> bytes:
    """OpenAI's embeddings JSON for a `/v2/embed` answer to `request`."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    vectors = _vectors(answer, provider)
    meta = answer.get("meta") if isinstance(answer, dict) else None
    billed = meta.get("billed_units") if isinstance(meta, dict) else None
    tokens = billed.get("input_tokens") if isinstance(billed, dict) else None
    tokens = int(tokens) if isinstance(tokens, int | float) else 0
    as_base64 = request.get("encoding_format") == "base64"
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": float32_base64(vector) if as_base64 else vector,
        }
        for index, vector in enumerate(vectors)
    ]
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": request.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
