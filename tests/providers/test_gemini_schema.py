"""JSON Schema -> Gemini `Schema` for tool parameters: what is kept, translated and dropped."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.providers.gemini.schema import gemini_schema


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": ["integer", "null"]}, {"type": "INTEGER", "nullable": True}),
        (
            {"type": ["string", "number"]},
            {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]},
        ),
        (
            {"anyOf": [{"type": "string"}, {"type": "null"}]},
            {"type": "STRING", "nullable": True},
        ),
        (
            {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
        ),
        ({"enum": ["a", "b", None]}, {"type": "STRING", "enum": ["a", "b"], "nullable": True}),
        (
            {"type": "number", "enum": [1.5, 2], "description": "Size"},
            {"type": "NUMBER", "description": "Size (one of: 1.5, 2)"},
        ),
        ({"const": "x"}, {"type": "STRING", "enum": ["x"]}),
        (
            {"type": "string", "format": "date-time", "minLength": 1, "examples": ["a"]},
            {"type": "STRING", "format": "date-time", "minLength": 1},
        ),
        ({"type": "string", "format": "uri"}, {"type": "STRING"}),
        ({"type": "number", "format": "double", "exclusiveMinimum": 0}, {"type": "NUMBER", "format": "double"}),
        ({"type": "array", "items": [{"type": "string"}]}, {"type": "ARRAY", "items": {"type": "STRING"}}),
        ({"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}, {"type": "OBJECT"}),
        ({"properties": {"a": {"type": "boolean"}}}, {"type": "OBJECT", "properties": {"a": {"type": "BOOLEAN"}}}),
    ],
)  # fmt: skip
def test_keywords(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert gemini_schema(schema) == expected


def test_all_of_is_merged_and_required_names_must_exist() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer"}}, "required": ["b", "c"]},
        ]
    }
    assert gemini_schema(schema) == {
        "type": "OBJECT",
        "properties": {"a": {"type": "STRING"}, "b": {"type": "INTEGER"}},
        "required": ["a", "b"],
    }


def test_references_are_inlined_and_recursion_is_cut() -> None:
    schema = {
        "type": "object",
        "properties": {"root": {"$ref": "#/definitions/node"}},
        "definitions": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                },
            }
        },
    }
    node = gemini_schema(schema)["properties"]["root"]
    assert node["properties"]["name"] == {"type": "STRING"}
    assert node["properties"]["children"]["items"] == {
        "type": "OBJECT",
        "description": "(recursive reference to #/definitions/node)",
    }
    assert gemini_schema({"$ref": "#/$defs/missing"}) == {}


def test_only_gemini_keywords_survive() -> None:
    known = {
        "type", "format", "title", "description", "nullable", "enum", "properties", "required",
        "items", "anyOf", "minItems", "maxItems", "minProperties", "maxProperties", "minLength",
        "maxLength", "pattern", "minimum", "maximum", "default", "example", "propertyOrdering",
    }  # fmt: skip
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "x",
        "$comment": "c",
        "type": "object",
        "title": "T",
        "strict": True,
        "not": {"type": "null"},
        "if": {},
        "then": {},
        "patternProperties": {"^x": {}},
        "unevaluatedProperties": False,
        "properties": {"n": {"type": "integer", "multipleOf": 2, "deprecated": True}},
        "propertyOrdering": ["n"],
    }

    def keys(node: Any) -> set[str]:
        if not isinstance(node, dict):
            return set()
        found = set(node)
        for value in node.get("properties", {}).values():
            found |= keys(value)
        return found

    converted = gemini_schema(schema)
    assert keys(converted) <= known
    assert converted == {
        "type": "OBJECT",
        "title": "T",
        "propertyOrdering": ["n"],
        "properties": {"n": {"type": "INTEGER"}},
    }
