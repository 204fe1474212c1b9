"""JSON Schema (OpenAI tool parameters) -> Gemini's `Schema`, a subset of OpenAPI 3.0.

Gemini rejects a function declaration whose `parameters` hold a keyword its `Schema` does not
know ("Unknown name ..."), so only the keywords below survive. The rest is translated where a
faithful equivalent exists and dropped otherwise:

- kept: type, format (the few Gemini accepts), title, description, nullable, enum (strings),
  properties, required, items, anyOf, minItems, maxItems, minProperties, maxProperties,
  minLength, maxLength, pattern, minimum, maximum, default, example, propertyOrdering;
- translated: `type: [X, "null"]` -> `type: X, nullable: true` (several types -> anyOf);
  `const` -> a one-value enum; `oneOf` -> anyOf; `allOf` -> its members merged; `$ref` -> the
  referenced `$defs`/`definitions` entry inlined (a recursive reference becomes a plain object);
  a non-string enum -> its values listed in the description; `required` names that are not
  properties are removed (Gemini rejects them);
- dropped: `$schema`, `$id`, `$comment`, `$defs`, `definitions`, `additionalProperties`,
  `patternProperties`, `unevaluatedProperties`, `not`, `if`/`then`/`else`, `exclusiveMinimum`,
  `exclusiveMaximum`, `multipleOf`, `uniqueItems`, `contains`, `prefixItems`, `examples`,
  `readOnly`, `writeOnly`, `deprecated`, `strict`, other formats (`uri`, `email`, `uuid`, ...)
  and any other keyword; an empty `properties` object is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["gemini_schema"]

_COPIED = (
    "title",
    "description",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
    "propertyOrdering",
)
_FORMATS: Mapping[str, frozenset[str]] = {
    "STRING": frozenset({"enum", "date-time"}),
    "NUMBER": frozenset({"float", "double"}),
    "INTEGER": frozenset({"int32", "int64"}),
}
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
_MAX_DEPTH = 32


def gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The Gemini `Schema` for a JSON schema (references resolved against its own root)."""
    return _convert(schema, schema, (), 0)


def _convert(
    node: Mapping[str, Any], root: Mapping[str, Any], refs: tuple[str, ...], depth: int
) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        return {"type": "OBJECT"}
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref in refs:
            return {"type": "OBJECT", "description": f"(recursive reference to {ref})"}
        return _convert(_resolve(ref, root), root, (*refs, ref), depth + 1)
    node = _merge_all_of(node)
    out: dict[str, Any] = {}
    _set_type(node, out)
    for key in _COPIED:
        if key in node:
            out[key] = node[key]
    _set_enum(node, out)
    _set_format(node, out)
    _set_children(node, out, root, refs, depth)
    return out


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        return {}
    target: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, Mapping) or part not in target:
            return {}
        target = target[part]
    return target if isinstance(target, Mapping) else {}


def _merge_all_of(node: Mapping[str, Any]) -> Mapping[str, Any]:
    members = node.get("allOf")
    if not isinstance(members, list):
        return node
    merged: dict[str, Any] = {key: value for key, value in node.items() if key != "allOf"}
    for member in members:
        if not isinstance(member, Mapping):
            continue
        for key, value in member.items():
            if key == "properties" and isinstance(value, Mapping):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _set_type(node: Mapping[str, Any], out: dict[str, Any]) -> None:
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []
    if "null" in kinds or node.get("nullable") is True:
        out["nullable"] = True
    concrete = [k for k in kinds if k in _TYPES]
    if len(concrete) == 1:
        out["type"] = concrete[0].upper()
    elif len(concrete) > 1:
        out["anyOf"] = [{"type": k.upper()} for k in concrete]
    elif (values := _enum_values(node)) and all(isinstance(v, str | None) for v in values):
        out["type"] = "STRING"
    elif isinstance(node.get("properties"), Mapping):
        out["type"] = "OBJECT"
    elif "items" in node:
        out["type"] = "ARRAY"


def _enum_values(node: Mapping[str, Any]) -> list[Any] | None:
    values = [node["const"]] if "const" in node else node.get("enum")
    return values if isinstance(values, list) else None


def _set_enum(node: Mapping[str, Any], out: dict[str, Any]) -> None:
    values = _enum_values(node)
    if values is None:
        return
    if None in values:
        out["nullable"] = True
        values = [value for value in values if value is not None]
    if out.get("type") == "STRING" and all(isinstance(value, str) for value in values):
        out["enum"] = values
        return
    # Gemini enums are strings; for other types name the allowed values instead.
    allowed = ", ".join(str(value) for value in values)
    description = out.get("description")
    out["description"] = (
        f"{description} (one of: {allowed})" if description else f"One of: {allowed}"
    )


def _set_format(node: Mapping[str, Any], out: dict[str, Any]) -> None:
    value = node.get("format")
    if isinstance(value, str) and value in _FORMATS.get(out.get("type", ""), frozenset()):
        out["format"] = value


def _set_children(
    node: Mapping[str, Any],
    out: dict[str, Any],
    root: Mapping[str, Any],
    refs: tuple[str, ...],
    depth: int,
) -> None:
    properties = node.get("properties")
    if isinstance(properties, Mapping) and properties:
        out["properties"] = {
            str(name): _convert(child if isinstance(child, Mapping) else {}, root, refs, depth + 1)
            for name, child in properties.items()
        }
        required = node.get("required")
        if isinstance(required, list):
            kept = [name for name in dict.fromkeys(required) if name in out["properties"]]
            if kept:
                out["required"] = kept
    items = node.get("items")
    if isinstance(items, list):
        items = items[0] if items else None
    if isinstance(items, Mapping):
        out["items"] = _convert(items, root, refs, depth + 1)
    options = node.get("anyOf", node.get("oneOf"))
    if isinstance(options, list):
        converted = [
            _convert(option, root, refs, depth + 1)
            for option in options
            if isinstance(option, Mapping) and option.get("type") != "null"
        ]
        if len(converted) < len(options):
            out["nullable"] = True
        if len(converted) == 1 and "type" not in out:
            out.update(converted[0])
        elif converted:
            out["anyOf"] = converted
