"""Build a small example value that satisfies a JSON schema.

Used for simulated tool-call arguments and ``json_schema`` structured output:
strings become ``"example"``, numbers ``1``, booleans ``true``.
"""

from __future__ import annotations

from typing import Any

_MAX_DEPTH = 8


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#/"):
        return {}
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _pick_type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        concrete = [item for item in kind if item != "null"]
        return str(concrete[0]) if concrete else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


def _object(schema: dict[str, Any], root: dict[str, Any], required_only: bool, depth: int) -> Any:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    required = (
        [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
    )
    names = (
        required if required_only else [*properties, *(n for n in required if n not in properties)]
    )
    return {
        name: _example(properties.get(name, {}), root, required_only, depth + 1) for name in names
    }


def _example(schema: object, root: dict[str, Any], required_only: bool, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "example"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _example(_resolve(ref, root), root, required_only, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return _example((usable or options)[0], root, required_only, depth + 1)
    kind = _pick_type(schema)
    if kind == "object":
        return _object(schema, root, required_only, depth)
    if kind == "array":
        items = schema.get("items")
        return [_example(items, root, required_only, depth + 1)] if isinstance(items, dict) else []
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "example"


def example_object(schema: object, *, required_only: bool) -> dict[str, Any]:
    """An example JSON object for ``schema`` (``{}`` when it is not an object schema)."""
    if not isinstance(schema, dict):
        return {}
    value = _example(schema, schema, required_only, 0)
    return value if isinstance(value, dict) else {}
