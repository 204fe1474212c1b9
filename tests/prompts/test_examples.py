"""The example prompts in `prompts/` load, and each renders every input of its tests.yaml.

Every test input must satisfy the input schema of every version (so the cases run against any
of them), and every expectation must name a field of the output schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from lockgate.prompts.registry import PromptRegistry, PromptVersion
from lockgate.prompts.schemas import compile_schema, output_violations

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
EXPECTED = {"code-review", "docs-update", "security-triage", "sentiment", "test-generation"}
OPERATORS = {"equals", "gte", "gt", "lte", "lt", "contains", "in"}
CASE_KEYS = {"name", "input", "expect", "max_latency_ms", "max_cost_usd", "schema_valid"}


@pytest.fixture(scope="module")
def registry() -> PromptRegistry:
    return PromptRegistry.load(PROMPTS, required=True)


def cases_of(name: str) -> list[dict[str, Any]]:
    data = YAML(typ="safe").load(PROMPTS / name / "tests.yaml")
    assert set(data) == {"tests"}
    cases: list[dict[str, Any]] = data["tests"]
    assert cases, f"{name}/tests.yaml has no case"
    return cases


def all_versions() -> list[tuple[str, str]]:
    registry = PromptRegistry.load(PROMPTS, required=True)
    return [(name, v.version) for name in registry.names() for v in registry.versions(name)]


def test_the_examples_are_there(registry: PromptRegistry) -> None:
    assert set(registry.names()) == EXPECTED
    assert [v.version for v in registry.versions("sentiment")] == ["1.0.0", "1.1.0"]


def test_sentiment_has_a_production_and_a_canary(registry: PromptRegistry) -> None:
    labels = registry.labels("sentiment")
    assert (labels["production"].version, labels["production"].weight) == ("1.0.0", None)
    assert (labels["canary"].version, labels["canary"].weight) == ("1.1.0", 10)
    assert registry.resolve("sentiment").version.version == "1.0.0"
    assert registry.resolve("sentiment@canary").version.version == "1.1.0"


@pytest.mark.parametrize(("name", "version"), all_versions())
def test_every_case_is_a_valid_input_and_renders(
    registry: PromptRegistry, name: str, version: str
) -> None:
    prompt = registry.resolve(f"{name}@{version}").version
    assert prompt.model == "gpt-4o-mini"
    assert prompt.has_output
    assert not prompt.stream
    assert prompt.description
    names = [case["name"] for case in cases_of(name)]
    assert len(names) == len(set(names)), "case names must be unique"
    for case in cases_of(name):
        assert set(case) <= CASE_KEYS, case["name"]
        assert prompt.input_violations(case["input"]) == [], case["name"]
        messages = prompt.render(case["input"])
        assert [m["role"] for m in messages] == [m.role for m in prompt.messages]
        assert all(m["content"].strip() for m in messages)
        assert "{{" not in "".join(m["content"] for m in messages)
        check_expectations(prompt, case)


def check_expectations(prompt: PromptVersion, case: dict[str, Any]) -> None:
    """Each expectation names an output field, and a value it expects could be valid there."""
    schema = prompt.output_schema
    assert schema is not None
    for path, expected in case.get("expect", {}).items():
        field = field_schema(schema, path.split("."))
        assert field is not None, f"{case['name']}: {path} is not in the output schema"
        if isinstance(expected, dict) and set(expected) & OPERATORS:
            assert set(expected) <= OPERATORS, f"{case['name']}: {path}: {expected}"
            values = expected.get("in", [expected.get("equals")] if "equals" in expected else [])
        else:
            values = [expected]
        for value in values:
            assert_valid(field, value, f"{case['name']}: {path}")


def field_schema(schema: dict[str, Any], parts: list[str]) -> dict[str, Any] | None:
    for part in parts:
        if part.isdigit():
            schema = schema.get("items", {})
        else:
            properties = schema.get("properties", {})
            if part not in properties:
                return None
            schema = properties[part]
    return schema


def assert_valid(field: dict[str, Any], value: object, where: str) -> None:
    assert output_violations(compile_schema(field), value) == [], where


def test_a_missing_required_input_is_refused(registry: PromptRegistry) -> None:
    for name in registry.names():
        for version in registry.versions(name):
            assert version.input_violations({}), f"{version.reference} accepts an empty body"
