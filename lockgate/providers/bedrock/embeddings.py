"""OpenAI embeddings <-> Bedrock InvokeModel bodies of Amazon Titan and Cohere Embed models.

The model id picks the body (an inference profile or ARN holding the id works too):

- `amazon.titan-embed*`: `{"inputText"}`, ONE text per call; Bedrock has no batch call for
  Titan, so a list of more than one text is refused (400 `unsupported_parameter`, param
  `input`) rather than fanned out. Titan Text Embeddings V2 (`amazon.titan-embed-text-v2*`)
  also takes `dimensions` (256, 512 or 1024 only, anything else is 400) and `normalize: true`
  (OpenAI's vectors are unit length); other Titan models take no `dimensions`. Answer:
  `{"embedding", "inputTextTokenCount"}`.
- `cohere.embed*`: `{"texts", "input_type", "embedding_types": ["float"]}`; `input_type` is
  `search_document` unless the request names another (a Cohere extension field). Cohere v3 has
  no output size: `dimensions` follows the unsupported-parameter rule. Answer: `{"embeddings",
  "id", "texts", "response_type"}`, `embeddings` a list (`embeddings_floats`) or `{"float": [...]}`
  (`embeddings_by_type`). It carries no token count: usage is estimated (characters / 4, rounded
  up, per text).

Token-id input cannot be served (both take text); `user` is left out; other parameters follow
the unsupported-parameter rule. Vectors come back as OpenAI's list, base64 little-endian float32
when the request asked for `encoding_format: base64` (the openai SDK's default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lockgate.errors import BadRequest, UpstreamServerError
from lockgate.providers.params import reject_or_drop
from lockgate.providers.vectors import float32_base64

__all__ = ["DEFAULT_INPUT_TYPE", "TITAN_DIMENSIONS", "embeddings_list", "invoke_body"]

DEFAULT_INPUT_TYPE = "search_document"
TITAN_DIMENSIONS = (256, 512, 1024)
_TITAN = "amazon.titan-embed"
_TITAN_V2 = "amazon.titan-embed-text-v2"
_COHERE = "cohere.embed"
_TRANSLATED = frozenset({"model", "input", "encoding_format", "dimensions"})


def _texts(body: Mapping[str, Any], provider: str) -> list[str]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    raise BadRequest(
        f"Provider '{provider}' (bedrock) embeds text only: 'input' must be a string or a "
        "non-empty list of strings",
        param="input",
        code="unsupported_parameter",
    )


def invoke_body(body: dict[str, Any], model: str, provider: str, drop: bool) -> dict[str, Any]:
    """The InvokeModel body for an OpenAI embeddings request to `model`."""
    body.pop("user", None)
    if _TITAN in model:
        return _titan(body, model, provider, drop)
    if _COHERE in model:
        return _cohere(body, provider, drop)
    raise BadRequest(
        f"Provider '{provider}' (bedrock) serves embeddings with Amazon Titan "
        f"({_TITAN}*) and Cohere ({_COHERE}*) models only, not '{model}'",
        param="model",
        code="unsupported_operation",
    )


def _titan(body: dict[str, Any], model: str, provider: str, drop: bool) -> dict[str, Any]:
    v2 = _TITAN_V2 in model
    known = _TRANSLATED if v2 else _TRANSLATED - {"dimensions"}
    reject_or_drop(body, [k for k in body if k not in known], provider, drop)
    texts = _texts(body, provider)
    if len(texts) > 1:
        raise BadRequest(
            f"Provider '{provider}' (bedrock) embeds one text per call with Titan model "
            f"'{model}' (Bedrock has no batch call for Titan): 'input' holds {len(texts)} "
            "texts, send one per request",
            param="input",
            code="unsupported_parameter",
        )
    request: dict[str, Any] = {"inputText": texts[0]}
    if v2:
        dimensions = body.get("dimensions")
        if dimensions is not None:
            if isinstance(dimensions, bool) or dimensions not in TITAN_DIMENSIONS:
                raise BadRequest(
                    f"Provider '{provider}' (bedrock) model '{model}' accepts 'dimensions' "
                    f"of {', '.join(map(str, TITAN_DIMENSIONS))} only, not {dimensions!r}",
                    param="dimensions",
                    code="unsupported_parameter",
                )
            request["dimensions"] = dimensions
        request["normalize"] = True
    return request


def _cohere(body: dict[str, Any], provider: str, drop: bool) -> dict[str, Any]:
    known = (_TRANSLATED - {"dimensions"}) | {"input_type"}
    reject_or_drop(body, [k for k in body if k not in known], provider, drop)
    input_type = body.get("input_type")
    if input_type is not None and not isinstance(input_type, str):
        raise BadRequest("'input_type' must be a string", param="input_type")
    return {
        "texts": _texts(body, provider),
        "input_type": input_type or DEFAULT_INPUT_TYPE,
        "embedding_types": ["float"],
    }


def _invalid(provider: str) -> UpstreamServerError:
    return UpstreamServerError(
        f"Provider '{provider}' answered with something that is not a Titan or Cohere "
        "embeddings response",
        code="upstream_invalid_response",
    )


def _is_vector(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, int | float) and not isinstance(item, bool) for item in value
    )


def _vectors(answer: object, request: Mapping[str, Any], provider: str) -> tuple[list[Any], int]:
    """The vectors of an answer and the prompt tokens (counted by Titan, else estimated)."""
    if not isinstance(answer, dict):
        raise _invalid(provider)
    if "embedding" in answer:  # Titan
        vector = answer["embedding"]
        count = answer.get("inputTextTokenCount")
        if not _is_vector(vector):
            raise _invalid(provider)
        tokens = count if isinstance(count, int) and not isinstance(count, bool) else None
        return [vector], _estimate(request) if tokens is None else tokens
    embeddings = answer.get("embeddings")
    if isinstance(embeddings, dict):  # response_type embeddings_by_type
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list) or not all(_is_vector(v) for v in embeddings):
        raise _invalid(provider)
    return embeddings, _estimate(request)


def _estimate(request: Mapping[str, Any]) -> int:
    value = request.get("input")
    texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return sum(-(-len(text) // 4) for text in texts if isinstance(text, str))


def embeddings_list(body: bytes, provider: str, request: Mapping[str, Any]) -> bytes:
    """OpenAI's embeddings JSON for an InvokeModel answer to `request`."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    vectors, tokens = _vectors(answer, request, provider)
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
