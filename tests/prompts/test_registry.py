"""The registry: lookups, resolution, immutability, and load time."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from lockgate.errors import BadRequest
from lockgate.prompts.registry import PromptNotFound, PromptRegistry, Resolved
from tests.prompts import VERSION, load, write_prompts

FULL = (
    "description: Rates a text.\n"
    + VERSION
    + "params: {temperature: 0, stop: [END]}\n"
    + "output:\n  type: object\n  required: [score]\n  properties: {score: {type: number}}\n"
)


@pytest.fixture
def registry(tmp_path: Path) -> PromptRegistry:
    return load(
        tmp_path,
        {
            "rate/1.0.0.yaml": FULL,
            "rate/1.10.0.yaml": VERSION,
            "rate/1.2.0.yaml": VERSION,
            "rate/2.0.0-rc.1.yaml": VERSION,
            "rate/labels.yaml": "production: 1.2.0\ncanary: {version: 2.0.0-rc.1, weight: 10}\n",
            "other/0.1.0.yaml": VERSION,
        },
    )


def test_names_versions_labels(registry: PromptRegistry) -> None:
    assert registry.names() == ["other", "rate"]
    assert [v.version for v in registry.versions("rate")] == [
        "1.0.0",
        "1.2.0",
        "1.10.0",
        "2.0.0-rc.1",
    ]
    assert {label: t.version for label, t in registry.labels("rate").items()} == {
        "production": "1.2.0",
        "canary": "2.0.0-rc.1",
    }
    assert registry.labels("other") == {}


def test_a_version_carries_its_file(registry: PromptRegistry, tmp_path: Path) -> None:
    version = registry.resolve("rate@1.0.0").version
    assert version.reference == "rate@1.0.0"
    assert version.description == "Rates a text."
    assert version.params == {"temperature": 0, "stop": ["END"]}
    assert version.has_output
    assert version.output_schema == {
        "type": "object",
        "required": ["score"],
        "properties": {"score": {"type": "number"}},
    }
    assert version.input_schema["required"] == ["text"]
    assert version.path == tmp_path / "prompts" / "rate" / "1.0.0.yaml"
    assert version.input_violations({}) == ["$: 'text' is a required property"]
    assert version.output_violations({"score": "high"}) == [
        "$.score: 'high' is not of type 'number'"
    ]
    assert registry.resolve("rate@1.2.0").version.output_violations("anything") == []


def test_resolve(registry: PromptRegistry) -> None:
    assert registry.resolve("rate") == Resolved(registry.versions("rate")[1], "production")
    assert registry.resolve("rate@^1").version.version == "1.10.0"
    assert registry.resolve("rate@~1.2").version.version == "1.2.0"
    assert registry.resolve("rate@canary") == Resolved(registry.versions("rate")[3], "canary")
    assert registry.resolve("other").version.version == "0.1.0"
    caller_labels = {registry.resolve("rate", f"key-{i}").label for i in range(300)}
    assert caller_labels == {"production", "canary"}


def test_resolve_errors(registry: PromptRegistry) -> None:
    with pytest.raises(PromptNotFound) as info:
        registry.resolve("rates@1.0.0")
    assert info.value.message == "Prompt 'rates' does not exist (did you mean 'rate'?)"
    with pytest.raises(PromptNotFound) as info:
        registry.resolve("zzz")
    assert info.value.message == "Prompt 'zzz' does not exist; prompts: other, rate"
    with pytest.raises(PromptNotFound) as info:
        registry.versions("zzz")
    with pytest.raises(PromptNotFound) as info:
        registry.resolve("rate@^3")
    assert "versions: 1.0.0, 1.2.0, 1.10.0, 2.0.0-rc.1; labels: canary, production" in (
        info.value.message
    )
    with pytest.raises(BadRequest):
        registry.resolve("rate@^x")


def test_the_registry_cannot_be_changed_through_what_it_returns(registry: PromptRegistry) -> None:
    version = registry.resolve("rate@1.0.0").version
    version.params["temperature"] = 1
    version.params["stop"].append("x")
    version.input_schema["required"].append("more")
    registry.versions("rate").clear()
    registry.labels("rate").clear()
    again = registry.resolve("rate@1.0.0").version
    assert again.params == {"temperature": 0, "stop": ["END"]}
    assert again.input_violations({"text": "x"}) == []
    assert len(registry.versions("rate")) == 4
    assert len(registry.labels("rate")) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        version.model = "other"  # type: ignore[misc]


def test_empty_registry() -> None:
    registry = PromptRegistry.empty()
    assert registry.names() == []
    with pytest.raises(PromptNotFound) as info:
        registry.resolve("x")
    assert info.value.message == "Prompt 'x' does not exist; there are no prompts"


def test_an_empty_folder_is_an_empty_registry(tmp_path: Path) -> None:
    folder = write_prompts(tmp_path, {})
    assert PromptRegistry.load(folder, required=True).names() == []
    assert PromptRegistry.load(folder).directory == folder


def test_fifty_prompts_load_well_under_a_second(tmp_path: Path) -> None:
    files = {"_partials/json-only.j2": "Answer with JSON only.\n"}
    body = FULL.replace('"Rate: {{ text }}"', "\"{% include 'json-only.j2' %}{{ text }}\"")
    for index in range(50):
        files[f"p{index}/1.0.0.yaml"] = body
        files[f"p{index}/1.1.0.yaml"] = body
        files[f"p{index}/labels.yaml"] = "production: 1.0.0\ncanary: {version: 1.1.0, weight: 5}\n"
    folder = write_prompts(tmp_path, files)
    started = time.perf_counter()
    registry = PromptRegistry.load(folder)
    elapsed = time.perf_counter() - started
    assert len(registry.names()) == 50
    assert elapsed < 2.0  # about 0.3 s on a developer machine; generous for a loaded CI runner
