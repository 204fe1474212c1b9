"""The prompt files on disk: their models, and reading a prompts folder into checked sources.

The layout is a contract other parts build on:

    prompts/
      _partials/*.j2          shared Jinja2 partials, included by name
      <name>/<semver>.yaml    one file per version; a published version is never edited
      <name>/labels.yaml      optional: label -> version, or label -> {version, weight}
      <name>/tests.yaml       optional: cases for `lockgate prompts test` (not read here)

Every mistake becomes a `ConfigIssue` with file, line and key path, as the config loader reports
them, and reading goes on after a mistake so that one error lists every issue of every file.
Templates and JSON Schemas are checked by the registry, which compiles them.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import re
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import semver
from pydantic import BaseModel, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError

from lockgate.config.base import StrictModel
from lockgate.config.loader import ConfigIssue, format_loc, line_of
from lockgate.prompts.errors import PromptFilesError

__all__ = [
    "LABELS_FILE",
    "LABEL_NAME",
    "PARTIALS_DIR",
    "PRODUCTION",
    "PROMPT_NAME",
    "TESTS_FILE",
    "LabelTarget",
    "Loc",
    "MessageSpec",
    "Partial",
    "PromptFilesError",
    "PromptSource",
    "PromptSpec",
    "PromptTree",
    "VersionFile",
    "YamlFile",
    "did_you_mean",
    "read_prompt_tree",
    "spec_problems",
]

Loc = tuple[int | str, ...]

PROMPT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
LABEL_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
PRODUCTION = "production"
PARTIALS_DIR = "_partials"
LABELS_FILE = "labels.yaml"
TESTS_FILE = "tests.yaml"

_STREAMING = "the caller chooses streaming (allowed when the prompt says `stream: true`)"
_RESERVED_PARAMS = {
    "model": "set the model with the top-level `model` key",
    "messages": "the messages are the prompt's own `messages`",
    "stream": _STREAMING,
    "stream_options": _STREAMING,
}

M = TypeVar("M", bound=BaseModel)


class MessageSpec(StrictModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str = Field(description="A Jinja2 template over the input body.")


class PromptSpec(StrictModel):
    """One version file, `<name>/<semver>.yaml`."""

    description: str | None = None
    model: str = Field(min_length=1, description="A model name of the gateway.")
    params: dict[str, Any] = Field(default_factory=dict)
    messages: list[MessageSpec] = Field(min_length=1)
    input: dict[str, Any] = Field(description="JSON Schema (2020-12) of the request body.")
    output: dict[str, Any] | None = Field(
        default=None, description="JSON Schema the model's JSON answer must satisfy."
    )
    stream: bool = False


class LabelTarget(StrictModel):
    """Where a label points: a version, and optionally the percentage of default calls it takes."""

    version: str
    weight: Annotated[int, Field(strict=True, ge=1, le=99)] | None = None


@dataclass(frozen=True)
class YamlFile:
    """A parsed YAML file; `tree` is ruamel's round-trip tree, which knows the line of each key."""

    path: Path
    display: str
    tree: Any
    sha256: str

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        line = line_of(self.tree, loc) if isinstance(self.tree, CommentedMap) else None
        return ConfigIssue(self.display, line or 1, format_loc(loc), message)


@dataclass(frozen=True)
class VersionFile:
    version: semver.Version
    file: YamlFile
    spec: PromptSpec


@dataclass(frozen=True)
class PromptSource:
    """One prompt folder: its valid version files (ascending) and its labels."""

    name: str
    versions: tuple[VersionFile, ...]
    labels: dict[str, LabelTarget]


@dataclass(frozen=True)
class Partial:
    name: str
    display: str
    source: str


@dataclass(frozen=True)
class PromptTree:
    prompts: tuple[PromptSource, ...]
    partials: tuple[Partial, ...]
    issues: tuple[ConfigIssue, ...]


def read_prompt_tree(directory: Path, *, required: bool = False) -> PromptTree:
    """Read every prompt folder and partial under `directory`, collecting every issue."""
    reader = _Reader(directory)
    if not directory.exists():
        if required:
            reader.issues.append(ConfigIssue(str(directory), None, "", "folder does not exist"))
        return PromptTree((), (), tuple(reader.issues))
    if not directory.is_dir():
        reader.issues.append(ConfigIssue(str(directory), None, "", "not a folder"))
        return PromptTree((), (), tuple(reader.issues))
    partials = reader.partials(directory / PARTIALS_DIR)
    prompts = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith((".", "_")) or not entry.is_dir():
            continue
        if not PROMPT_NAME.fullmatch(entry.name):
            reader.issues.append(
                ConfigIssue(
                    reader.display(entry),
                    None,
                    "",
                    "a prompt folder name is lowercase letters, digits, '-' and '_'",
                )
            )
            continue
        prompt = reader.prompt(entry)
        if prompt is not None:
            prompts.append(prompt)
    return PromptTree(tuple(prompts), partials, tuple(reader.issues))


def spec_problems(spec: PromptSpec) -> list[tuple[Loc, str]]:
    """Mistakes a version file's model cannot express: reserved params, streaming with output."""
    problems: list[tuple[Loc, str]] = [
        (("params", key), f"{key!r} cannot be set in params: {why}")
        for key, why in _RESERVED_PARAMS.items()
        if key in spec.params
    ]
    if spec.stream and spec.output is not None:
        problems.append(
            (
                ("stream",),
                "stream: true cannot be combined with `output` (a JSON answer is "
                "validated whole, so it cannot be streamed)",
            )
        )
    return problems


def did_you_mean(word: str, choices: Iterable[str], what: str | None = "expected one of") -> str:
    """` (did you mean 'x'?)` for a close match, else `; <what>: a, b, c`.

    Empty when nothing is close and `what` is None (the choices are too many to list) or there
    are no choices.
    """
    known = sorted(choices)
    hint = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if hint:
        return f" (did you mean {hint[0]!r}?)"
    return f"; {what}: {', '.join(known)}" if known and what else ""


class _Reader:
    """Reads files under one prompts folder and collects the issues found on the way."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.issues: list[ConfigIssue] = []
        self._yaml = YAML(typ="rt")
        self._yaml.allow_duplicate_keys = False

    def display(self, path: Path) -> str:
        """The path shown in issues: relative to the prompts folder's parent (`prompts/x/...`)."""
        return (Path(self.root.name) / path.relative_to(self.root)).as_posix()

    def partials(self, folder: Path) -> tuple[Partial, ...]:
        if not folder.is_dir():
            return ()
        found = []
        for path in sorted(folder.rglob("*.j2")):
            if not path.is_file():
                continue
            raw = self._read_bytes(path)
            text = self._decode(path, raw) if raw is not None else None
            if text is not None:
                name = path.relative_to(folder).as_posix()
                found.append(Partial(name, self.display(path), text))
        return tuple(found)

    def prompt(self, folder: Path) -> PromptSource | None:
        version_files: list[VersionFile] = []
        existing: set[semver.Version] = set()
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name in (LABELS_FILE, TESTS_FILE):
                continue
            if path.suffix == ".yml":
                self._file_issue(path, "use the .yaml extension (e.g. 1.0.0.yaml)")
            elif path.suffix == ".yaml":
                version = self._version_of(path)
                if version is not None:
                    existing.add(version)
                    loaded = self._version_file(path, version)
                    if loaded is not None:
                        version_files.append(loaded)
        if not existing:
            self.issues.append(
                ConfigIssue(self.display(folder), None, "", "no version files (e.g. 1.0.0.yaml)")
            )
            return None
        labels_path = folder / LABELS_FILE
        labels = self._labels(labels_path, existing) if labels_path.is_file() else {}
        version_files.sort(key=lambda item: item.version)
        return PromptSource(folder.name, tuple(version_files), labels)

    def _version_of(self, path: Path) -> semver.Version | None:
        stem = path.name.removesuffix(".yaml")
        if not semver.Version.is_valid(stem):
            self._file_issue(
                path,
                "a version file is named by its semantic version, e.g. 1.0.0.yaml or "
                f"1.1.0-rc.1.yaml (the other files here are {LABELS_FILE} and {TESTS_FILE})",
            )
            return None
        version = semver.Version.parse(stem)
        if version.build:
            self._file_issue(path, "build metadata (+...) is not allowed in a version file name")
            return None
        return version

    def _version_file(self, path: Path, version: semver.Version) -> VersionFile | None:
        file = self._load(path)
        if file is None:
            return None
        if not isinstance(file.tree, CommentedMap):
            self.issues.append(file.issue((), "a version file must hold a mapping of keys"))
            return None
        spec = self._validate(file, PromptSpec, file.tree, ())
        if spec is None:
            return None
        problems = spec_problems(spec)
        self.issues.extend(file.issue(loc, message) for loc, message in problems)
        return None if problems else VersionFile(version, file, spec)

    def _labels(self, path: Path, existing: set[semver.Version]) -> dict[str, LabelTarget]:
        file = self._load(path)
        if file is None or file.tree is None:
            return {}
        if not isinstance(file.tree, CommentedMap):
            self.issues.append(file.issue((), "labels.yaml must map label names to versions"))
            return {}
        labels: dict[str, LabelTarget] = {}
        for key, value in file.tree.items():
            label = str(key)
            if not LABEL_NAME.fullmatch(label):
                self.issues.append(
                    file.issue(
                        (label,),
                        "a label name is lowercase letters, digits, '-' and '_', "
                        "starting with a letter",
                    )
                )
                continue
            target = self._label_target(file, label, value, existing)
            if target is not None:
                labels[label] = target
        weights = [target.weight for target in labels.values() if target.weight]
        if sum(weights) > 99:
            self.issues.append(
                file.issue(
                    (),
                    f"label weights add up to {sum(weights)}; at most 99 (the rest of the "
                    "calls keep the default version)",
                )
            )
        return labels

    def _label_target(
        self, file: YamlFile, label: str, value: Any, existing: set[semver.Version]
    ) -> LabelTarget | None:
        if isinstance(value, str):
            target: LabelTarget | None = LabelTarget(version=str(value))
            loc: Loc = (label,)
        elif isinstance(value, CommentedMap):
            target = self._validate(file, LabelTarget, value, (label,))
            loc = (label, "version")
        else:
            self.issues.append(
                file.issue((label,), "expected a version such as 1.0.0, or {version, weight}")
            )
            return None
        if target is None:
            return None
        if not semver.Version.is_valid(target.version):
            self.issues.append(file.issue(loc, f"{target.version!r} is not a semantic version"))
            return None
        version = semver.Version.parse(target.version)
        if version not in existing or version.build:
            have = ", ".join(str(v) for v in sorted(existing))
            self.issues.append(
                file.issue(loc, f"version {target.version} does not exist (versions: {have})")
            )
            return None
        if target.weight is not None and label == PRODUCTION:
            self.issues.append(
                file.issue(
                    (label, "weight"),
                    "the production label takes no weight: it is what the other calls get",
                )
            )
            return None
        return target

    def _validate(self, file: YamlFile, model: type[M], tree: Any, prefix: Loc) -> M | None:
        odd: list[Loc] = []
        data = _plain(tree, prefix, odd)
        self.issues.extend(
            file.issue(where, "not a JSON value (a YAML tag or type JSON lacks)") for where in odd
        )
        if odd:
            return None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors(include_input=False, include_url=False):
                loc: Loc = tuple(error["loc"])
                if error["type"] == "extra_forbidden":
                    key = str(loc[-1])
                    message = f"unknown key {key!r}" + did_you_mean(
                        key, _fields_at(model, loc[:-1])
                    )
                elif error["type"] == "missing":
                    message = "required key is missing"
                else:
                    message = error["msg"]
                self.issues.append(file.issue((*prefix, *loc), message))
            return None

    def _load(self, path: Path) -> YamlFile | None:
        raw = self._read_bytes(path)
        text = self._decode(path, raw) if raw is not None else None
        if raw is None or text is None:
            return None
        try:
            tree = self._yaml.load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            problem = exc.problem or exc.context or "invalid YAML"
            self.issues.append(
                ConfigIssue(self.display(path), line, "", f"invalid YAML: {problem}")
            )
            return None
        return YamlFile(path, self.display(path), tree, hashlib.sha256(raw).hexdigest())

    def _read_bytes(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except OSError as exc:
            self._file_issue(path, f"cannot read: {exc.strerror}")
            return None

    def _decode(self, path: Path, raw: bytes) -> str | None:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._file_issue(path, f"not UTF-8 text (byte {exc.start})")
            return None

    def _file_issue(self, path: Path, message: str) -> None:
        self.issues.append(ConfigIssue(self.display(path), 1, "", message))


def _fields_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys allowed at `loc` inside `model` (list indexes are stepped over)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, str):
            info = current.model_fields.get(part)
            current = _model_in(info.annotation) if info is not None else None
    return list(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _plain(node: Any, loc: Loc, odd: list[Loc]) -> Any:
    """Plain JSON data from ruamel's tree (its str/float subclasses; dates as ISO text).

    A value JSON has no type for (`!!binary`, `!!set`, a custom tag) is recorded in `odd`.
    """
    if isinstance(node, dict):
        return {str(key): _plain(value, (*loc, str(key)), odd) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item, (*loc, index), odd) for index, item in enumerate(node)]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime.date):
        return node.isoformat()
    odd.append(loc)
    return None
