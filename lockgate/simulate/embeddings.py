"""The ``/embeddings`` request validation and response body."""

from __future__ import annotations

from typing import Any

from lockgate.simulate.errors import invalid_type, invalid_value, missing_parameter
from lockgate.simulate.vectors import embedding_vector, encode_base64

MAX_DIMENSIONS = 65_536
_INPUT_SHAPE = "a string, an array of strings, or an array of token arrays"


def _is_tokens(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(token, int) and not isinstance(token, bool) for token in value
    )


def parse_inputs(body: dict[str, Any]) -> list[str | list[int]]:
    value = body.get("input")
    if value is None:
        raise missing_parameter("input")
    if isinstance(value, str):
        items: list[str | list[int]] = [value]
    elif isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        items = list(value)
    elif isinstance(value, list) and value and _is_tokens(value):
        items = [value]
    elif isinstance(value, list) and value and all(_is_tokens(item) for item in value):
        items = list(value)
    else:
        raise invalid_type("input", _INPUT_SHAPE)
    if any(len(item) == 0 for item in items):
        raise invalid_value("input", "inputs must not be empty.")
    return items


def _dimensions(body: dict[str, Any], default: int) -> int:
    value = body.get("dimensions")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type("dimensions", "an integer")
    if not 1 <= value <= MAX_DIMENSIONS:
        raise invalid_value("dimensions", f"expected a value between 1 and {MAX_DIMENSIONS}.")
    return value


def _encoding(body: dict[str, Any]) -> str:
    value = body.get("encoding_format")
    if value is None:
        return "float"
    if value not in ("float", "base64"):
        raise invalid_value("encoding_format", "expected 'float' or 'base64'.")
    return str(value)


def _tokens(item: str | list[int]) -> int:
    return len(item) if isinstance(item, list) else max(1, -(-len(item) // 4))


def embeddings_payload(body: dict[str, Any], model: str, default_dims: int) -> dict[str, Any]:
    inputs = parse_inputs(body)
    dims = _dimensions(body, default_dims)
    as_base64 = _encoding(body) == "base64"
    data = []
    for index, item in enumerate(inputs):
        vector = embedding_vector(item, dims)
        encoded: str | list[float] = encode_base64(vector) if as_base64 else vector.tolist()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    prompt_tokens = sum(_tokens(item) for item in inputs)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
