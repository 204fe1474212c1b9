"""The prompt registry: every version of every prompt, checked and compiled once at load.

A registry never changes after `load`; a reload builds a new one and swaps it in, so a request
keeps the registry it started with.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import semver
from jinja2 import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jsonschema import Draft202012Validator

from lockgate.config.loader import ConfigIssue
from lockgate.prompts.files import (
    LabelTarget,
    MessageSpec,
    PromptFilesError,
    VersionFile,
    did_you_mean,
    read_prompt_tree,
)
from lockgate.prompts.refs import PromptNotFound, choose_version, parse_reference
from lockgate.prompts.render import (
    ChatMessage,
    MessageTemplates,
    PromptRenderError,
    TemplateProblem,
    compile_template,
    make_environment,
)
from lockgate.prompts.schemas import (
    compile_schema,
    input_violations,
    output_violations,
    schema_problems,
)

__all__ = [
    "LabelTarget",
    "PromptFilesError",
    "PromptNotFound",
    "PromptRegistry",
    "PromptRenderError",
    "PromptVersion",
    "Resolved",
]

_LISTED_NAMES = 20
"""Up to this many prompt names are listed when a reference names an unknown prompt."""


@dataclass(frozen=True)
class PromptVersion:
    """One loaded version file.

    `params`, `input_schema` and `output_schema` are fresh copies on every access (kept as JSON
    bytes), so a caller may change what it gets without changing the registry.
    """

    name: str
    version: str
    description: str | None
    model: str
    stream: bool
    has_output: bool
    path: Path
    sha256: str
    """Hex SHA-256 of the file's bytes: which exact text served a call."""
    messages: tuple[MessageSpec, ...]
    """The message templates as written (role, Jinja2 source)."""
    templates: MessageTemplates = field(repr=False, compare=False)
    input_validator: Draft202012Validator = field(repr=False, compare=False)
    output_validator: Draft202012Validator | None = field(repr=False, compare=False)
    params_json: bytes = field(repr=False)
    input_json: bytes = field(repr=False)
    output_json: bytes | None = field(repr=False)

    @property
    def reference(self) -> str:
        """`name@version`, the exact reference of this version."""
        return f"{self.name}@{self.version}"

    @property
    def params(self) -> dict[str, Any]:
        """Chat-completion parameters (never model, messages, stream or stream_options)."""
        return _object(self.params_json)

    @property
    def input_schema(self) -> dict[str, Any]:
        return _object(self.input_json)

    @property
    def output_schema(self) -> dict[str, Any] | None:
        return _object(self.output_json) if self.output_json is not None else None

    def render(self, body: Mapping[str, Any]) -> list[ChatMessage]:
        """The chat messages for an input body that `input_violations` accepted.

        Raises `PromptRenderError` (500) when a template fails.
        """
        return self.templates.render(body)

    def input_violations(self, body: object) -> list[str]:
        """Why `body` is not a valid input, one line per violation (empty: it is valid)."""
        return input_violations(self.input_validator, body)

    def output_violations(self, answer: object) -> list[str]:
        """Why a parsed JSON answer breaks the output schema (empty: valid, or no schema)."""
        if self.output_validator is None:
            return []
        return output_violations(self.output_validator, answer)


@dataclass(frozen=True)
class Resolved:
    """The version a reference chose, and the label it was chosen through (if any)."""

    version: PromptVersion
    label: str | None


@dataclass(frozen=True)
class _Prompt:
    versions: tuple[PromptVersion, ...]
    semvers: tuple[semver.Version, ...]
    labels: Mapping[str, LabelTarget]


class PromptRegistry:
    """Prompts by name; build it with `load` (or `empty`)."""

    def __init__(self, prompts: Mapping[str, _Prompt], directory: Path | None = None) -> None:
        self._prompts: Mapping[str, _Prompt] = MappingProxyType(dict(prompts))
        self.directory = directory

    @classmethod
    def empty(cls) -> PromptRegistry:
        return cls({})

    @classmethod
    def load(cls, directory: Path, *, required: bool = False) -> PromptRegistry:
        """Load, check and compile every prompt under `directory`.

        Raises `PromptFilesError` listing every issue of every file. A missing folder gives an
        empty registry unless `required`.
        """
        tree = read_prompt_tree(directory, required=required)
        issues = list(tree.issues)
        env = make_environment({partial.name: partial.source for partial in tree.partials})
        for partial in tree.partials:
            try:
                compile_template(env, partial.source)
            except TemplateProblem as exc:
                issues.append(ConfigIssue(partial.display, exc.lineno or 1, "", str(exc)))
        prompts: dict[str, _Prompt] = {}
        for source in tree.prompts:
            versions = [_build(source.name, item, env, issues) for item in source.versions]
            built = tuple(version for version in versions if version is not None)
            semvers = tuple(item.version for item in source.versions)
            labels = MappingProxyType(dict(source.labels))
            prompts[source.name] = _Prompt(built, semvers, labels)
        if issues:
            issues.sort(key=lambda issue: (issue.file, issue.line or 0))
            raise PromptFilesError(issues)
        return cls(prompts, directory)

    def names(self) -> list[str]:
        return sorted(self._prompts)

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of a prompt, ascending by semantic version."""
        return list(self._prompt(name).versions)

    def labels(self, name: str) -> dict[str, LabelTarget]:
        """A prompt's labels in labels.yaml order (the order canary slices are taken in)."""
        return dict(self._prompt(name).labels)

    def resolve(self, reference: str, caller: str | None = None) -> Resolved:
        """The version `reference` names; `caller` (e.g. the API key's name) makes canaries sticky.

        Raises `BadRequest` for a malformed reference, `PromptNotFound` when nothing matches.
        """
        parsed = parse_reference(reference)
        prompt = self._prompt(parsed.name)
        chosen, label = choose_version(parsed, prompt.semvers, prompt.labels, caller)
        return Resolved(prompt.versions[prompt.semvers.index(chosen)], label)

    def _prompt(self, name: str) -> _Prompt:
        prompt = self._prompts.get(name)
        if prompt is None:
            names = self._prompts.keys()
            what = "prompts" if 0 < len(names) <= _LISTED_NAMES else None
            hint = did_you_mean(name, names, what) if names else "; there are no prompts"
            raise PromptNotFound(f"Prompt '{name}' does not exist{hint}")
        return prompt


def _build(
    name: str, item: VersionFile, env: ImmutableSandboxedEnvironment, issues: list[ConfigIssue]
) -> PromptVersion | None:
    """Check and compile one version file; its problems go to `issues`."""
    spec, file = item.spec, item.file
    found = [
        file.issue(("input", *loc), message)
        for loc, message in schema_problems(spec.input, object_root=True)
    ]
    if spec.output is not None:
        found += [
            file.issue(("output", *loc), message) for loc, message in schema_problems(spec.output)
        ]
    templates: list[tuple[str, Template]] = []
    for index, message in enumerate(spec.messages):
        try:
            templates.append((message.role, compile_template(env, message.content)))
        except TemplateProblem as exc:
            found.append(file.issue(("messages", index, "content"), str(exc)))
    if found:
        issues.extend(found)
        return None
    version = str(item.version)
    return PromptVersion(
        name=name,
        version=version,
        description=spec.description,
        model=spec.model,
        stream=spec.stream,
        has_output=spec.output is not None,
        path=file.path,
        sha256=file.sha256,
        messages=tuple(spec.messages),
        templates=MessageTemplates(f"{name}@{version}", tuple(templates)),
        input_validator=compile_schema(copy.deepcopy(spec.input)),
        output_validator=compile_schema(copy.deepcopy(spec.output)) if spec.output else None,
        params_json=orjson.dumps(spec.params),
        input_json=orjson.dumps(spec.input),
        output_json=orjson.dumps(spec.output) if spec.output is not None else None,
    )


def _object(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(data)
    return value
