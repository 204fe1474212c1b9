"""Read `lockgate.yaml` into a `GatewayConfig`; every mistake is reported with file, line, key path.

YAML is parsed with ruamel.yaml's round-trip loader because it keeps the line of every key; the
parsed tree is interpolated from the environment, validated by pydantic, and each validation error
is mapped back to the line it came from.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from lockgate.config.interpolate import MissingVariable, interpolate
from lockgate.config.models import GatewayConfig
from lockgate.config.references import check_references

__all__ = ["ConfigError", "ConfigIssue", "load_config", "parse_config"]

Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class ConfigIssue:
    """One mistake in a configuration file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; `issues` lists every mistake found."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Load and validate a configuration file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(str(file), None, "", f"cannot read: {exc.strerror}")]
        ) from exc
    return parse_config(text, source=str(file), env=env)


def parse_config(
    text: str, source: str = "<config>", env: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Validate configuration text; raises `ConfigError` listing every mistake."""
    tree = _parse_yaml(text, source)
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise ConfigError([ConfigIssue(source, 1, "", "the file must hold a mapping of sections")])
    issues: list[ConfigIssue] = []
    data = _interpolate_tree(tree, (), env if env is not None else os.environ, source, tree, issues)
    if issues:
        raise ConfigError(issues)
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_issues(exc, source, tree)) from None
    problems = check_references(config)
    if problems:
        raise ConfigError(
            [
                ConfigIssue(source, line_of(tree, loc), format_loc(loc), message)
                for loc, message in problems
            ]
        )
    return config


def _parse_yaml(text: str, source: str) -> Any:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([ConfigIssue(source, line, "", f"invalid YAML: {problem}")]) from None


def _interpolate_tree(
    node: Any,
    loc: Loc,
    env: Mapping[str, str],
    source: str,
    root: CommentedMap,
    issues: list[ConfigIssue],
) -> Any:
    """Plain Python data from the YAML tree, with `${VAR}` substituted in every string."""
    if isinstance(node, CommentedMap):
        return {
            str(key): _interpolate_tree(value, (*loc, str(key)), env, source, root, issues)
            for key, value in node.items()
        }
    if isinstance(node, CommentedSeq):
        return [
            _interpolate_tree(item, (*loc, index), env, source, root, issues)
            for index, item in enumerate(node)
        ]
    if isinstance(node, str):
        try:
            return interpolate(str(node), env)
        except MissingVariable as exc:
            issues.append(ConfigIssue(source, line_of(root, loc), format_loc(loc), str(exc)))
            return ""
    return node


def _validation_issues(exc: ValidationError, source: str, tree: CommentedMap) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = _clean_loc(error["loc"])
        if error["type"] == "extra_forbidden":
            message = _unknown_key_message(loc)
        elif error["type"] == "missing":
            message = "required key is missing"
        else:
            message = error["msg"]
        issues.append(ConfigIssue(source, line_of(tree, loc), format_loc(loc), message))
    return issues


def _clean_loc(loc: Sequence[int | str]) -> Loc:
    # pydantic inserts validator names into the loc of some union/function errors; keep only
    # the parts that exist in the document.
    return tuple(
        part for part in loc if isinstance(part, int) or not str(part).startswith("function-")
    )


def _unknown_key_message(loc: Loc) -> str:
    key = str(loc[-1])
    known = _known_keys(loc[:-1])
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if hint:
        return f"unknown key {key!r} (did you mean {hint[0]!r}?)"
    if known:
        return f"unknown key {key!r}; expected one of: {', '.join(sorted(known))}"
    return f"unknown key {key!r}"


def _known_keys(loc: Loc) -> list[str]:
    """The field names of the model found at `loc` inside GatewayConfig."""
    annotation: Any = GatewayConfig
    for part in loc:
        model = _model_in(annotation)
        if isinstance(part, int) or model is None:
            annotation = _item_type(annotation)
            continue
        fields = {f.alias or name: f for name, f in model.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
    model = _model_in(annotation)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in _union_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _item_type(annotation: Any) -> Any:
    for candidate in (annotation, *_union_args(annotation)):
        args = typing.get_args(candidate)
        if typing.get_origin(candidate) is typing.Annotated:
            return _item_type(args[0])
        if typing.get_origin(candidate) in (list, tuple, Sequence) and args:
            return args[0]
        if typing.get_origin(candidate) in (dict, Mapping) and len(args) == 2:
            return args[1]
    return None


def _union_args(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        return (typing.get_args(annotation)[0],)
    return ()


def line_of(tree: CommentedMap, loc: Loc) -> int | None:
    """1-based line of the deepest part of `loc` present in the YAML tree."""
    node: Any = tree
    line: int | None = tree.lc.line + 1 if loc else None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def format_loc(loc: Loc) -> str:
    """`("models", 0, "targets")` -> `models[0].targets`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
