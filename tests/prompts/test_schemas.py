"""JSON Schema checks: load-time schema problems, and every violation of a body, by path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lockgate.prompts.schemas import (
    MAX_VIOLATIONS,
    compile_schema,
    input_violations,
    json_path,
    output_violations,
    schema_problems,
)
from tests.prompts import VERSION, problems

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["text", "name"],
    "properties": {
        "text": {"type": "string", "maxLength": 10},
        "n": {"type": "integer", "minimum": 1},
        "items": {"type": "array", "items": {"type": "object", "required": ["x"]}},
        "odd key": {"type": "boolean"},
        "email": {"type": "string", "format": "email"},
    },
}


def test_every_violation_sorted_by_path() -> None:
    body = {"text": 5, "n": 0, "items": [{"x": 1}, {}, {"x": 2}, {}], "odd key": "no"}
    assert input_violations(compile_schema(SCHEMA), body) == [
        "$: 'name' is a required property",
        "$.items[1]: 'x' is a required property",
        "$.items[3]: 'x' is a required property",
        "$.n: 0 is less than the minimum of 1",
        "$['odd key']: 'no' is not of type 'boolean'",
        "$.text: 5 is not of type 'string'",
    ]


def test_a_valid_body_has_no_violation() -> None:
    assert input_violations(compile_schema(SCHEMA), {"text": "hi", "name": "x"}) == []


def test_formats_are_checked() -> None:
    violations = input_violations(compile_schema(SCHEMA), {"text": "", "name": 1, "email": "no"})
    assert "$.email: 'no' is not a 'email'" in violations


def test_the_list_is_bounded() -> None:
    validator = compile_schema({"type": "array", "items": {"type": "string"}})
    violations = input_violations(validator, list(range(1000)))
    assert len(violations) == MAX_VIOLATIONS + 1
    assert violations[-1] == "(more violations not listed; the first 50 are)"
    assert violations[:3] == [
        "$[0]: 0 is not of type 'string'",
        "$[1]: 1 is not of type 'string'",
        "$[2]: 2 is not of type 'string'",
    ]
    assert violations[10] == "$[10]: 10 is not of type 'string'"  # numeric order, not text


def test_a_huge_value_is_not_echoed_whole() -> None:
    (violation,) = input_violations(compile_schema(SCHEMA), {"text": "x" * 100_000, "name": 1})
    assert violation.startswith("$.text: 'xxx")
    assert len(violation) < 400
    assert violation.endswith("…")


def test_output_violations() -> None:
    validator = compile_schema({"type": "object", "properties": {"label": {"enum": ["a", "b"]}}})
    assert output_violations(validator, {"label": "c"}) == ["$.label: 'c' is not one of ['a', 'b']"]
    assert output_violations(validator, []) == ["$: [] is not of type 'object'"]


def test_json_path() -> None:
    assert json_path(()) == "$"
    assert json_path(("a", 0, "b c", "d")) == "$.a[0]['b c'].d"


# load-time schema checks


def test_a_valid_schema_has_no_problem() -> None:
    assert schema_problems(SCHEMA, object_root=True) == []
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"tag": {"type": "string"}},
        "properties": {
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
            "alt": {"anyOf": [{"$ref": "#/$defs/tag"}, {"type": "null"}]},
        },
        "x-owner": "team-a",
    }
    assert schema_problems(schema, object_root=True) == []


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "strin"}}},
            (("properties", "a", "type"), "invalid JSON Schema: 'strin' is not valid under"),
        ),
        (
            {"type": "object", "properties": {"a": {"maxLenght": 3}}},
            (
                ("properties", "a", "maxLenght"),
                "unknown JSON Schema keyword 'maxLenght' (did you mean 'maxLength'?)",
            ),
        ),
        (
            {"type": "object", "requird": ["a"]},
            (("requird",), "unknown JSON Schema keyword 'requird' (did you mean 'required'?)"),
        ),
        (
            {"type": "array"},
            (("type",), "the root must be `type: object` (a request body is an object)"),
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
            (("properties", "a", "$ref"), "$ref 'https://example.com/s.json' leaves the schema"),
        ),
        (
            {"type": "object", "anyOf": [{"$ref": "#/$defs/missing"}]},
            (("anyOf", 0, "$ref"), "$ref '#/$defs/missing' does not resolve inside the schema"),
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
            (("$schema",), "only draft 2020-12 is supported"),
        ),
    ],
)
def test_schema_problems(schema: dict[str, Any], expected: tuple[tuple[Any, ...], str]) -> None:
    found = schema_problems(schema, object_root=True)
    assert len(found) == 1
    loc, message = found[0]
    assert loc == expected[0]
    assert message.startswith(expected[1])


def test_a_nested_resource_keeps_its_own_references() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"$id": "https://example.com/a", "$ref": "#/$defs/x"}},
    }
    assert schema_problems(schema) == []


def test_schema_problems_are_load_errors_with_line_and_path(tmp_path: Path) -> None:
    text = VERSION.replace("{text: {type: string}}", "{text: {type: strin, maxLenght: 3}}")
    text += "output:\n  type: object\n  properties:\n    score: {type: number, minimun: 0}\n"
    assert [
        problem.split(": ", 2)[:2] for problem in problems(tmp_path, {"r/1.0.0.yaml": text})
    ] == [
        ["prompts/r/1.0.0.yaml:8", "input.properties.text.type"],
        ["prompts/r/1.0.0.yaml:8", "input.properties.text.maxLenght"],
        ["prompts/r/1.0.0.yaml:12", "output.properties.score.minimun"],
    ]


def test_the_input_must_be_an_object_schema(tmp_path: Path) -> None:
    text = VERSION.replace("  type: object\n", "  type: array\n", 1)
    assert problems(tmp_path, {"r/1.0.0.yaml": text}) == [
        "prompts/r/1.0.0.yaml:6: input.type: the root must be `type: object` (a request body is "
        "an object)"
    ]
