"""Reading prompt files: every mistake is reported with file, line and key path, all at once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lockgate.prompts.files import PromptFilesError, read_prompt_tree
from lockgate.prompts.registry import PromptRegistry
from tests.prompts import VERSION, load, problems, write_prompts


def test_a_minimal_version_loads_with_defaults(tmp_path: Path) -> None:
    registry = load(tmp_path, {"rate/1.0.0.yaml": VERSION})
    (version,) = registry.versions("rate")
    assert (version.name, version.version, version.model) == ("rate", "1.0.0", "gpt-4o-mini")
    assert version.description is None
    assert version.params == {}
    assert version.stream is False
    assert version.has_output is False
    assert version.output_schema is None
    assert version.path == tmp_path / "prompts" / "rate" / "1.0.0.yaml"
    assert version.sha256 == hashlib.sha256(VERSION.encode()).hexdigest()
    assert [(m.role, m.content) for m in version.messages] == [("user", "Rate: {{ text }}")]


def test_unknown_top_level_key_names_line_and_suggests(tmp_path: Path) -> None:
    text = VERSION.replace("model:", "modle:")
    assert problems(tmp_path, {"rate/1.0.0.yaml": text}) == [
        "prompts/rate/1.0.0.yaml:1: model: required key is missing",
        "prompts/rate/1.0.0.yaml:1: modle: unknown key 'modle' (did you mean 'model'?)",
    ]


def test_unknown_key_without_a_close_match_lists_the_keys(tmp_path: Path) -> None:
    text = VERSION + "temperature_zero: true\n"
    assert problems(tmp_path, {"rate/1.0.0.yaml": text}) == [
        "prompts/rate/1.0.0.yaml:9: temperature_zero: unknown key 'temperature_zero'; expected "
        "one of: description, input, messages, model, output, params, stream"
    ]


def test_unknown_key_in_a_message(tmp_path: Path) -> None:
    text = VERSION.replace('    content: "Rate', '    contents: "Rate')
    assert problems(tmp_path, {"rate/1.0.0.yaml": text}) == [
        "prompts/rate/1.0.0.yaml:3: messages[0].content: required key is missing",
        "prompts/rate/1.0.0.yaml:4: messages[0].contents: unknown key 'contents' "
        "(did you mean 'content'?)",
    ]


def test_bad_role(tmp_path: Path) -> None:
    text = VERSION.replace("role: user", "role: bot")
    assert problems(tmp_path, {"rate/1.0.0.yaml": text}) == [
        "prompts/rate/1.0.0.yaml:3: messages[0].role: Input should be 'system', 'developer', "
        "'user' or 'assistant'"
    ]


def test_no_messages(tmp_path: Path) -> None:
    text = "model: m\nmessages: []\ninput: {type: object}\n"
    (problem,) = problems(tmp_path, {"rate/1.0.0.yaml": text})
    assert problem.startswith("prompts/rate/1.0.0.yaml:2: messages: List should have at least 1")


@pytest.mark.parametrize("name", ["1.0.yaml", "v1.0.0.yaml", "01.0.0.yaml", "latest.yaml"])
def test_a_version_file_name_must_be_strict_semver(tmp_path: Path, name: str) -> None:
    found = problems(tmp_path, {"rate/1.0.0.yaml": VERSION, f"rate/{name}": VERSION})
    assert found == [
        f"prompts/rate/{name}:1: a version file is named by its semantic version, e.g. "
        "1.0.0.yaml or 1.1.0-rc.1.yaml (the other files here are labels.yaml and tests.yaml)"
    ]


def test_yml_extension_and_build_metadata_are_refused(tmp_path: Path) -> None:
    files = {"rate/1.0.0.yaml": VERSION, "rate/1.1.0.yml": VERSION, "rate/1.2.0+b1.yaml": VERSION}
    assert problems(tmp_path, files) == [
        "prompts/rate/1.1.0.yml:1: use the .yaml extension (e.g. 1.0.0.yaml)",
        "prompts/rate/1.2.0+b1.yaml:1: build metadata (+...) is not allowed in a version file name",
    ]


def test_pre_release_file_names_and_other_files(tmp_path: Path) -> None:
    registry = load(
        tmp_path,
        {
            "rate/1.0.0.yaml": VERSION,
            "rate/1.1.0-rc.1.yaml": VERSION,
            "rate/README.md": "notes",
            "rate/tests.yaml": "not: [checked here",
            "README.md": "about these prompts",
            ".git/config": "x",
            "_drafts/x.yaml": "not a prompt",
        },
    )
    assert registry.names() == ["rate"]
    assert [v.version for v in registry.versions("rate")] == ["1.0.0", "1.1.0-rc.1"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("model", "'model' cannot be set in params: set the model with the top-level `model` key"),
        ("messages", "'messages' cannot be set in params: the messages are the prompt's own"),
        ("stream", "'stream' cannot be set in params: the caller chooses streaming"),
        ("stream_options", "'stream_options' cannot be set in params: the caller chooses"),
    ],
)
def test_reserved_params_are_refused(tmp_path: Path, key: str, expected: str) -> None:
    text = VERSION + f"params:\n  temperature: 0\n  {key}: x\n"
    (problem,) = problems(tmp_path, {"rate/1.0.0.yaml": text})
    assert problem.startswith(f"prompts/rate/1.0.0.yaml:11: params.{key}: {expected}")


def test_stream_cannot_come_with_output(tmp_path: Path) -> None:
    text = VERSION + "output: {type: object}\nstream: true\n"
    (problem,) = problems(tmp_path, {"rate/1.0.0.yaml": text})
    assert problem.startswith(
        "prompts/rate/1.0.0.yaml:10: stream: stream: true cannot be combined with `output`"
    )


def test_invalid_yaml_and_duplicate_keys_give_the_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "a/1.0.0.yaml": VERSION + "params: {temperature: [0}\n",
            "b/1.0.0.yaml": VERSION + "model: again\n",
        },
    )
    assert len(found) == 2
    assert found[0].startswith("prompts/a/1.0.0.yaml:9: invalid YAML")
    assert found[1].startswith("prompts/b/1.0.0.yaml:9: invalid YAML")


def test_a_version_file_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, {"rate/1.0.0.yaml": "- a\n- b\n"}) == [
        "prompts/rate/1.0.0.yaml:1: a version file must hold a mapping of keys"
    ]


def test_folder_names_and_empty_prompts(tmp_path: Path) -> None:
    found = problems(
        tmp_path, {"Rate Me/1.0.0.yaml": VERSION, "empty/notes.md": "", "ok/1.0.0.yaml": VERSION}
    )
    assert found == [
        "prompts/Rate Me: a prompt folder name is lowercase letters, digits, '-' and '_'",
        "prompts/empty: no version files (e.g. 1.0.0.yaml)",
    ]


def test_not_utf8(tmp_path: Path) -> None:
    folder = write_prompts(tmp_path, {"rate/1.0.0.yaml": VERSION})
    (folder / "rate" / "1.1.0.yaml").write_bytes(b"model: \xff\n")
    with pytest.raises(PromptFilesError) as info:
        PromptRegistry.load(folder)
    assert info.value.problems == ["prompts/rate/1.1.0.yaml:1: not UTF-8 text (byte 7)"]


def test_every_issue_of_every_file_is_listed_in_file_order(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "b/1.0.0.yaml": VERSION.replace("role: user", "role: bot"),
            "a/1.0.0.yaml": VERSION.replace("model:", "modle:"),
            "a/2.0.0.yaml": VERSION + "stream: maybe\n",
            "a/labels.yaml": "production: 3.0.0\n",
        },
    )
    assert [problem.split(": ")[0] for problem in found] == [
        "prompts/a/1.0.0.yaml:1",
        "prompts/a/1.0.0.yaml:1",
        "prompts/a/2.0.0.yaml:9",
        "prompts/a/labels.yaml:1",
        "prompts/b/1.0.0.yaml:3",
    ]


def test_missing_folder(tmp_path: Path) -> None:
    assert PromptRegistry.load(tmp_path / "nowhere").names() == []
    with pytest.raises(PromptFilesError) as info:
        PromptRegistry.load(tmp_path / "nowhere", required=True)
    assert info.value.problems == [f"{tmp_path / 'nowhere'}: folder does not exist"]


def test_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "prompts").write_text("x")
    tree = read_prompt_tree(tmp_path / "prompts")
    assert [str(issue) for issue in tree.issues] == [f"{tmp_path / 'prompts'}: not a folder"]


def test_error_accepts_plain_lines_too() -> None:
    error = PromptFilesError(["apis[0].prompt: no such prompt"])
    assert error.problems == ["apis[0].prompt: no such prompt"]
    assert error.issues == []
    assert str(error) == "apis[0].prompt: no such prompt"


# labels.yaml


def labels_problems(tmp_path: Path, labels: str) -> list[str]:
    files = {"rate/1.0.0.yaml": VERSION, "rate/1.1.0.yaml": VERSION, "rate/labels.yaml": labels}
    return problems(tmp_path, files)


def test_labels_load_in_file_order(tmp_path: Path) -> None:
    registry = load(
        tmp_path,
        {
            "rate/1.0.0.yaml": VERSION,
            "rate/1.1.0-rc.1.yaml": VERSION,
            "rate/labels.yaml": "production: 1.0.0\ncanary: {version: 1.1.0-rc.1, weight: 5}\n",
        },
    )
    labels = registry.labels("rate")
    assert list(labels) == ["production", "canary"]
    assert (labels["canary"].version, labels["canary"].weight) == ("1.1.0-rc.1", 5)
    assert labels["production"].weight is None


def test_an_empty_labels_file_is_no_labels(tmp_path: Path) -> None:
    files = {"rate/1.0.0.yaml": VERSION, "rate/labels.yaml": "# none yet\n"}
    assert load(tmp_path, files).labels("rate") == {}


def test_a_label_naming_a_missing_version(tmp_path: Path) -> None:
    assert labels_problems(tmp_path, "production: 1.0.0\ncanary: {version: 2.0.0}\n") == [
        "prompts/rate/labels.yaml:2: canary.version: version 2.0.0 does not exist "
        "(versions: 1.0.0, 1.1.0)"
    ]
    assert labels_problems(tmp_path, "production: 1.2.0\n") == [
        "prompts/rate/labels.yaml:1: production: version 1.2.0 does not exist "
        "(versions: 1.0.0, 1.1.0)"
    ]


def test_a_label_naming_a_broken_version_is_not_reported_twice(tmp_path: Path) -> None:
    files = {
        "rate/1.0.0.yaml": VERSION.replace("role: user", "role: bot"),
        "rate/labels.yaml": "production: 1.0.0\n",
    }
    (problem,) = problems(tmp_path, files)
    assert problem.startswith("prompts/rate/1.0.0.yaml:3: messages[0].role")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ("canary: {version: 1.1.0, weight: 0}\n", "canary.weight: Input should be greater than"),
        ("canary: {version: 1.1.0, weight: 100}\n", "canary.weight: Input should be less than"),
        ("canary: {version: 1.1.0, weight: '10'}\n", "canary.weight: Input should be a valid"),
        ("canary: {version: 1.1.0, weight: true}\n", "canary.weight: Input should be a valid"),
        ("canary: {version: 1.1.0, weigth: 10}\n", "canary.weigth: unknown key 'weigth' (did you"),
        ("canary: {weight: 10}\n", "canary.version: required key is missing"),
        ("canary: 1.0\n", "canary: expected a version such as 1.0.0, or {version, weight}"),
        ("canary: v1.1.0\n", "canary: 'v1.1.0' is not a semantic version"),
        ("Canary: 1.1.0\n", "Canary: a label name is lowercase letters, digits, '-' and '_'"),
        ("1st: 1.1.0\n", "1st: a label name is lowercase letters"),
        ("production: {version: 1.0.0, weight: 5}\n", "production.weight: the production label"),
    ],
)
def test_bad_labels(tmp_path: Path, labels: str, expected: str) -> None:
    (problem,) = labels_problems(tmp_path, labels)
    assert problem.startswith(f"prompts/rate/labels.yaml:1: {expected}")


def test_weights_may_not_add_up_to_100(tmp_path: Path) -> None:
    ok = "a: {version: 1.1.0, weight: 60}\nb: {version: 1.0.0, weight: 39}\n"
    assert set(
        load(
            tmp_path,
            {"rate/1.0.0.yaml": VERSION, "rate/1.1.0.yaml": VERSION, "rate/labels.yaml": ok},
        ).labels("rate")
    ) == {"a", "b"}
    assert labels_problems(tmp_path, ok.replace("39", "40")) == [
        "prompts/rate/labels.yaml:1: label weights add up to 100; at most 99 (the rest of the "
        "calls keep the default version)"
    ]


def test_labels_must_be_a_mapping(tmp_path: Path) -> None:
    assert labels_problems(tmp_path, "- 1.0.0\n") == [
        "prompts/rate/labels.yaml:1: labels.yaml must map label names to versions"
    ]


def test_values_json_lacks_are_refused(tmp_path: Path) -> None:
    text = VERSION + "params:\n  seed: !!binary aGVsbG8=\n  stop: !custom x\n  when: 2024-01-02\n"
    assert problems(tmp_path, {"rate/1.0.0.yaml": text}) == [
        "prompts/rate/1.0.0.yaml:10: params.seed: not a JSON value (a YAML tag or type JSON lacks)",
        "prompts/rate/1.0.0.yaml:11: params.stop: not a JSON value (a YAML tag or type JSON lacks)",
    ]
    registry = load(tmp_path, {"rate/1.0.0.yaml": VERSION + "params: {when: 2024-01-02}\n"})
    assert registry.versions("rate")[0].params == {"when": "2024-01-02"}
