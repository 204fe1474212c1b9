"""OpenAI embeddings <-> Gemini `batchEmbedContents` (Gemini API) or `predict` (Vertex AI).

Request: `input` (a string or a list of strings) -> one embed request per string, `dimensions`
-> `outputDimensionality`; token-id input cannot be served (Gemini takes text only); `user` is
left out; any other parameter follows the unsupported-parameter rule. Response: the vectors as
OpenAI's `{"object": "list", "data": [...]}`, float lists, or base64 of little-endian float32
when the request asked for `encoding_format: base64`. Usage: Vertex reports token counts per
input; the Gemini API reports none, so the prompt tokens are estimated (characters / 4) when the
request is known, else 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lockgate.errors import BadRequest, UpstreamServerError
from lockgate.providers.gemini.response import decode_json
from lockgate.providers.params import reject_or_drop
from lockgate.providers.vectors import float32_base64

__all__ = ["embeddings_body", "embeddings_list"]

_TRANSLATED = frozenset({"model", "input", "dimensions", "encoding_format"})


def texts_of(body: Mapping[str, Any], provider: str) -> list[str]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise BadRequest(
        f"Provider '{provider}' embeds text only: 'input' must be a string or a list of strings",
        param="input",
        code="unsupported_parameter",
    )


def embeddings_body(
    body: dict[str, Any], model: str, provider: str, drop_unsupported: bool, *, vertex: bool
) -> dict[str, Any]:
    """`batchEmbedContents` body, or Vertex `predict` body when `vertex`."""
    body = {k: v for k, v in body.items() if k != "user"}
    reject_or_drop(body, [k for k in body if k not in _TRANSLATED], provider, drop_unsupported)
    texts = texts_of(body, provider)
    dimensions = body.get("dimensions")
    if vertex:
        request: dict[str, Any] = {"instances": [{"content": text} for text in texts]}
        if dimensions is not None:
            request["parameters"] = {"outputDimensionality": dimensions}
        return request
    name = model if model.startswith("models/") else f"models/{model}"
    requests = []
    for text in texts:
        entry: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            entry["outputDimensionality"] = dimensions
        requests.append(entry)
    return {"requests": requests}


def embeddings_list(body: bytes, provider: str, request: Mapping[str, Any] | None) -> bytes:
    """OpenAI's embeddings JSON for a `batchEmbedContents` or `predict` answer."""
    answer = decode_json(body, provider)
    vectors, tokens = _vectors(answer, provider)
    if tokens is None:
        tokens = _estimate(request, provider) if request is not None else 0
    as_base64 = request is not None and request.get("encoding_format") == "base64"
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": float32_base64(vector) if as_base64 else vector,
        }
        for index, vector in enumerate(vectors)
    ]
    model = request.get("model", "") if request is not None else ""
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _vectors(answer: object, provider: str) -> tuple[list[list[float]], int | None]:
    if isinstance(answer, dict) and isinstance(answer.get("embeddings"), list):
        return [_values(item, provider) for item in answer["embeddings"]], None
    if isinstance(answer, dict) and isinstance(answer.get("predictions"), list):
        vectors, tokens = [], 0
        for prediction in answer["predictions"]:
            embedding = prediction.get("embeddings") if isinstance(prediction, dict) else None
            vectors.append(_values(embedding, provider))
            statistics = embedding.get("statistics") if isinstance(embedding, dict) else None
            count = statistics.get("token_count") if isinstance(statistics, dict) else None
            tokens += int(count) if isinstance(count, int | float) else 0
        return vectors, tokens
    raise UpstreamServerError(f"Provider '{provider}' answered with an unexpected body")


def _values(item: object, provider: str) -> list[float]:
    values = item.get("values") if isinstance(item, dict) else None
    if not isinstance(values, list):
        raise UpstreamServerError(
            f"Provider '{provider}' answered with an embedding lacking values"
        )
    return values


def _estimate(request: Mapping[str, Any], provider: str) -> int:
    try:
        texts = texts_of(request, provider)
    except BadRequest:
        return 0
    return sum(-(-len(text) // 4) for text in texts)
