"""JSON Schema (draft 2020-12) checks of prompt inputs and outputs.

At load, a schema is checked against the meta-schema, and also for what the meta-schema lets
pass but is almost always a mistake: an unknown keyword (`requird: [...]` would silently check
nothing), a `$ref` that does not resolve (it would fail on every request) or that leaves the
schema (no schema is ever fetched). Validators are compiled once per version; `format` is
checked for the formats jsonschema can check without extra packages (email, date, uuid, ...).

Violations are listed all at once (up to a bound), sorted by JSON path, each message shortened
so that a huge value is not echoed whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from lockgate.prompts.files import Loc, did_you_mean

if TYPE_CHECKING:
    from referencing._core import Resolver  # not re-exported by referencing

__all__ = [
    "MAX_VIOLATIONS",
    "compile_schema",
    "input_violations",
    "json_path",
    "output_violations",
    "schema_problems",
]

MAX_VIOLATIONS = 50
_MAX_MESSAGE = 300
_DRAFT = "https://json-schema.org/draft/2020-12/schema"

_KEYWORDS = frozenset(
    {
        # core
        *("$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary"),
        *("$comment", "$defs", "definitions"),
        # applicators
        *("prefixItems", "items", "contains", "additionalProperties", "properties"),
        *("patternProperties", "dependentSchemas", "propertyNames", "if", "then", "else"),
        *("allOf", "anyOf", "oneOf", "not", "unevaluatedItems", "unevaluatedProperties"),
        # validation
        *("type", "const", "enum", "multipleOf", "maximum", "exclusiveMaximum", "minimum"),
        *("exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems"),
        *("uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties"),
        *("required", "dependentRequired"),
        # annotations, format, content
        *("title", "description", "default", "deprecated", "readOnly", "writeOnly", "examples"),
        *("format", "contentEncoding", "contentMediaType", "contentSchema"),
    }
)
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_SCHEMA_MAPS |= {"dependentSchemas"}
_SCHEMA_ONE = frozenset(
    {"items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"}
) | {"unevaluatedItems", "unevaluatedProperties", "contentSchema"}
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})


def schema_problems(
    schema: Mapping[str, Any], *, object_root: bool = False
) -> list[tuple[Loc, str]]:
    """Every mistake found in a schema, as (location inside the schema, message).

    `object_root` requires `type: object` at the root (a request body is a JSON object).
    """
    problems: list[tuple[Loc, str]] = []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        problems.append((tuple(exc.path), f"invalid JSON Schema: {_shorten(exc.message)}"))
    declared = schema.get("$schema")
    if declared is not None and declared != _DRAFT:
        problems.append((("$schema",), f"only draft 2020-12 is supported ({_DRAFT})"))
    if object_root and schema.get("type") != "object":
        problems.append(
            (("type",), "the root must be `type: object` (a request body is an object)")
        )
    resolver = Registry().resolver_with_root(DRAFT202012.create_resource(dict(schema)))
    _walk(schema, (), problems, resolver)
    return problems


def compile_schema(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A validator for a schema that `schema_problems` found no problem in."""
    return Draft202012Validator(dict(schema), format_checker=Draft202012Validator.FORMAT_CHECKER)


def input_violations(
    validator: Draft202012Validator, body: object, limit: int = MAX_VIOLATIONS
) -> list[str]:
    """Why a request body does not satisfy a prompt's input schema (empty: it does)."""
    return _violations(validator, body, limit)


def output_violations(
    validator: Draft202012Validator, answer: object, limit: int = MAX_VIOLATIONS
) -> list[str]:
    """Why a model's parsed JSON answer does not satisfy a prompt's output schema."""
    return _violations(validator, answer, limit)


def json_path(path: Loc) -> str:
    """`("a", 0, "b c")` -> `$.a[0]['b c']`."""
    text = "$"
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}"
        else:
            text += "[" + repr(part) + "]"
    return text


def _violations(validator: Draft202012Validator, instance: object, limit: int) -> list[str]:
    errors = list(islice(validator.iter_errors(instance), limit + 1))
    found = sorted(
        (
            _sort_key(tuple(error.absolute_path)),
            json_path(tuple(error.absolute_path)),
            error.message,
        )
        for error in errors[:limit]
    )
    lines = [f"{path}: {_shorten(message)}" for _, path, message in found]
    if len(errors) > limit:
        lines.append(f"(more violations not listed; the first {limit} are)")
    return lines


def _sort_key(path: Loc) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, part) if isinstance(part, int) else (1, part) for part in path)


def _shorten(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"


def _walk(
    node: Any, loc: Loc, problems: list[tuple[Loc, str]], resolver: Resolver[Any] | None
) -> None:
    """Check keywords and `$ref`s of a (sub)schema and of every subschema below it."""
    if not isinstance(node, Mapping):
        return
    if loc and "$id" in node:
        resolver = None  # a nested resource has its own base; its references are not checked
    for key, value in node.items():
        here = (*loc, key)
        if key not in _KEYWORDS and not key.startswith("x-"):
            hint = did_you_mean(key, _KEYWORDS, None)
            problems.append((here, f"unknown JSON Schema keyword {key!r}{hint}"))
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
            for name, sub in value.items():
                _walk(sub, (*here, name), problems, resolver)
        elif key in _SCHEMA_ONE:
            _walk(value, here, problems, resolver)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            for index, sub in enumerate(value):
                _walk(sub, (*here, index), problems, resolver)
        elif key == "$ref" and isinstance(value, str) and resolver is not None:
            _check_ref(value, here, problems, resolver)


def _check_ref(
    ref: str, loc: Loc, problems: list[tuple[Loc, str]], resolver: Resolver[Any]
) -> None:
    if not ref.startswith("#"):
        problems.append(
            (loc, f"$ref {ref!r} leaves the schema; only '#...' references are allowed")
        )
        return
    try:
        resolver.lookup(ref)
    except Unresolvable:
        problems.append((loc, f"$ref {ref!r} does not resolve inside the schema"))
