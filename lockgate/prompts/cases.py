"""`prompts/<name>/tests.yaml`: the cases `lockgate prompts test` runs, and how an answer is judged.

```yaml
tests:
  - name: praise is positive
    input: {text: "Great work, thanks!"}
    expect: {label: positive, score: {gte: 0.3}, "findings.0.severity": {in: [low, medium]}}
    max_latency_ms: 10000
    max_cost_usd: 0.01
    schema_valid: true
```

An expectation is a field path (dots between keys and list indexes) and either a value the field
must equal, or a mapping of operators: `equals`, `gte`, `gt`, `lte`, `lt`, `contains`, `in`
(`{equals: {...}}` compares with an object whose keys are operator names). The file is validated
strictly (unknown keys, wrong types, duplicate case names), every mistake with file and line, the
way `lockgate.yaml` is.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from lockgate.config.loader import ConfigError, ConfigIssue, format_loc, line_of

__all__ = [
    "OPERATORS",
    "Answer",
    "Case",
    "CaseFile",
    "Expectation",
    "check_answer",
    "field_at",
    "load_cases",
    "parse_cases",
    "render_value",
]

Number = StrictFloat
"""An int or a float (never a bool or a numeric string); kept as a float."""
OPERATORS: Final = ("equals", "gte", "gt", "lte", "lt", "contains", "in")
COMPARISONS: Final = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}
MISSING: Final = object()
"""What `field_at` returns for a path the answer does not have."""


class Expectation(BaseModel):
    """What one field of the answer must be; a plain value in the file means `equals`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    equals: Any = None
    gte: Number | None = None
    gt: Number | None = None
    lte: Number | None = None
    lt: Number | None = None
    contains: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")

    @model_validator(mode="before")
    @classmethod
    def _plain_value_means_equals(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and any(key in OPERATORS for key in data):
            return data
        # A scalar, a list, or a mapping with no operator in it: the field equals it.
        return {"equals": data}

    def operators(self) -> list[tuple[str, Any]]:
        """The operators given, in the order of `OPERATORS`, with their operands."""
        given = {"in" if name == "in_" else name for name in self.model_fields_set}
        return [(op, getattr(self, "in_" if op == "in" else op)) for op in OPERATORS if op in given]


class Case(BaseModel):
    """One test case: an input, what the answer must hold, and ceilings on latency and cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    input: dict[str, Any]
    expect: dict[str, Expectation] = Field(default_factory=dict)
    max_latency_ms: Annotated[Number, Field(gt=0)] | None = None
    max_cost_usd: Annotated[Number, Field(ge=0)] | None = None
    schema_valid: StrictBool | None = None
    """Check the answer against the answered version's output schema; default: when it has one."""

    @field_validator("expect")
    @classmethod
    def _paths_are_well_formed(cls, expect: dict[str, Expectation]) -> dict[str, Expectation]:
        for path in expect:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"field path {path!r}: expected keys separated by single dots")
        return expect


class CaseFile(BaseModel):
    """A whole `tests.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tests: Annotated[list[Case], Field(min_length=1)]


@dataclass(frozen=True)
class Answer:
    """What the gateway answered to one case, as the judge needs it."""

    body: Any
    latency_ms: float
    cost_usd: float | None = None
    schema_violations: list[str] | None = None
    """The answer's output-schema violations; None when it was not checked."""


def load_cases(path: Path) -> CaseFile:
    """Read and validate a tests.yaml; raises `ConfigError` listing every mistake."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(str(path), None, "", f"cannot read: {exc.strerror}")]
        ) from exc
    return parse_cases(text, source=str(path))


def parse_cases(text: str, source: str = "tests.yaml") -> CaseFile:
    """Validate tests.yaml text; raises `ConfigError` with file, line and key path of each issue."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([ConfigIssue(source, line, "", f"invalid YAML: {problem}")]) from None
    if not isinstance(tree, CommentedMap):
        raise ConfigError([ConfigIssue(source, 1, "", "expected a mapping with a `tests:` list")])
    try:
        cases = CaseFile.model_validate(_plain(tree))
    except ValidationError as exc:
        raise ConfigError(_issues(exc, source, tree)) from None
    duplicates = _duplicate_names(cases)
    if duplicates:
        raise ConfigError(
            [
                ConfigIssue(
                    source,
                    line_of(tree, ("tests", index, "name")),
                    f"tests[{index}].name",
                    f"duplicate case name {cases.tests[index].name!r} (names must be unique)",
                )
                for index in duplicates
            ]
        )
    return cases


def _plain(node: Any) -> Any:
    """JSON-like Python data from the YAML tree (a YAML date becomes its ISO text)."""
    if isinstance(node, CommentedMap):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(item) for item in node]
    if isinstance(node, datetime.date):
        return node.isoformat()
    if isinstance(node, str):
        return str(node)
    return node


def _issues(exc: ValidationError, source: str, tree: CommentedMap) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = tuple(
            part
            for part in error["loc"]
            if isinstance(part, int) or not str(part).startswith("function-")
        )
        if error["type"] == "extra_forbidden":
            message = _unknown_key(loc)
        elif error["type"] == "missing":
            message = "required key is missing"
        else:
            message = error["msg"].removeprefix("Value error, ")
        issues.append(ConfigIssue(source, line_of(tree, loc), format_loc(loc), message))
    return issues


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    key = str(loc[-1])
    if len(loc) == 1:
        known: Sequence[str] = list(CaseFile.model_fields)
    elif len(loc) == 3:
        known = list(Case.model_fields)
    else:  # tests[i].expect.<path>.<key>
        known = OPERATORS
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if hint:
        return f"unknown key {key!r} (did you mean {hint[0]!r}?)"
    return f"unknown key {key!r}; expected one of: {', '.join(known)}"


def _duplicate_names(cases: CaseFile) -> list[int]:
    seen: set[str] = set()
    duplicates = []
    for index, case in enumerate(cases.tests):
        if case.name in seen:
            duplicates.append(index)
        seen.add(case.name)
    return duplicates


def field_at(body: Any, path: str) -> Any:
    """The value at a dotted path (`findings.0.severity`), or `MISSING`."""
    node = body
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def check_answer(case: Case, answer: Answer, *, has_output_schema: bool) -> list[str]:
    """Every way `answer` falls short of `case`, one readable reason each; empty when it passes."""
    reasons = []
    for path, expectation in case.expect.items():
        value = field_at(answer.body, path)
        if value is MISSING:
            reasons.append(f"{path}: missing from the answer")
            continue
        for operator, operand in expectation.operators():
            reason = _judge(operator, operand, value)
            if reason is not None:
                reasons.append(f"{path}: {reason}")
    if case.max_latency_ms is not None and answer.latency_ms > case.max_latency_ms:
        reasons.append(
            f"latency {answer.latency_ms:.0f} ms over max_latency_ms {case.max_latency_ms:g}"
        )
    if case.max_cost_usd is not None:
        if answer.cost_usd is None:
            reasons.append("max_cost_usd: the gateway reported no cost (is the model priced?)")
        elif answer.cost_usd > case.max_cost_usd:
            reasons.append(f"cost ${answer.cost_usd:g} over max_cost_usd {case.max_cost_usd:g}")
    if case.schema_valid is True and not has_output_schema:
        reasons.append("schema_valid: the answered version has no output schema")
    elif (case.schema_valid is not False and has_output_schema) and answer.schema_violations:
        reasons += [f"output schema: {violation}" for violation in answer.schema_violations]
    return reasons


def _judge(operator: str, operand: Any, value: Any) -> str | None:
    """None when `value` satisfies `operator operand`, else why not."""
    if operator == "equals":
        if _same(value, operand):
            return None
        return f"expected {render_value(operand)}, got {_got(value)}"
    if operator in COMPARISONS:
        symbol = COMPARISONS[operator]
        if not _is_number(value):
            return f"expected a number {symbol} {operand:g}, got {_got(value)}"
        holds = {
            "gte": value >= operand,
            "gt": value > operand,
            "lte": value <= operand,
            "lt": value < operand,
        }[operator]
        return None if holds else f"expected {symbol} {operand:g}, got {_got(value)}"
    if operator == "contains":
        if isinstance(value, str) and isinstance(operand, str):
            found = operand in value
        elif isinstance(value, list):
            found = any(_same(item, operand) for item in value)
        else:
            wanted = render_value(operand)
            return f"expected a text or a list containing {wanted}, got {_got(value)}"
        return None if found else f"expected to contain {render_value(operand)}, got {_got(value)}"
    # "in"
    if any(_same(value, option) for option in operand):
        return None
    return f"expected one of {render_value(operand)}, got {_got(value)}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _same(value: Any, expected: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true is not 1."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    if isinstance(value, list) and isinstance(expected, list):
        return len(value) == len(expected) and all(map(_same, value, expected))
    if isinstance(value, dict) and isinstance(expected, dict):
        return value.keys() == expected.keys() and all(_same(value[k], expected[k]) for k in value)
    return bool(value == expected)


def render_value(value: Any, limit: int = 120) -> str:
    """A value as compact JSON, cut to `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _got(value: Any) -> str:
    return render_value(value)
