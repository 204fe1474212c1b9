"""GitLab Code Quality reports (the Code Climate subset GitLab reads) and stable fingerprints.

GitLab compares a merge request's report with its target branch's by fingerprint: an issue whose
fingerprint is new shows as introduced, one that disappeared as resolved. A fingerprint therefore
hashes what identifies the problem, not where it sits: the file, the message normalised (case,
spacing, quoting and numbers do not count) and the content of the line it is on (or, when that is
unknown, the check's name). Editing lines above it moves its line number, not its fingerprint.
Within one report fingerprints must be unique (GitLab keeps one issue per fingerprint), so a
repeated issue gets its occurrence number mixed in.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeGuard, get_args

__all__ = [
    "REPORT_FILE",
    "SEVERITIES",
    "QualityIssue",
    "Severity",
    "at_least",
    "fingerprint",
    "is_severity",
    "normalise_message",
    "report_json",
    "unique_fingerprints",
    "write_report",
]

REPORT_FILE: Final = "gl-code-quality-report.json"

Severity = Literal["info", "minor", "major", "critical", "blocker"]
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)
"""From least to most severe."""

FINGERPRINT_HEX = 32


def is_severity(value: object) -> TypeGuard[Severity]:
    return value in SEVERITIES


def at_least(severity: Severity, threshold: Severity) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(threshold)


_QUOTES = re.compile("[`'\"\u201c\u201d\u2018\u2019]")
_NUMBERS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def normalise_message(message: str) -> str:
    """A message as compared for identity: lower case, unquoted, numbers as #, spaces collapsed."""
    text = _QUOTES.sub("", message.casefold())
    text = _NUMBERS.sub("#", text)
    return _SPACE.sub(" ", text).strip().rstrip(".!;:, ")


def fingerprint(path: str, message: str, anchor: str) -> str:
    """The identity of an issue: `anchor` is the content of its line, or its check's name."""
    line = _SPACE.sub(" ", anchor).strip()
    key = "\x00".join((path, normalise_message(message), line))
    return hashlib.sha256(key.encode()).hexdigest()[:FINGERPRINT_HEX]


def unique_fingerprints(fingerprints: Sequence[str]) -> list[str]:
    """The same list where a repeat of an earlier fingerprint gets its occurrence number mixed in.

    The first occurrence keeps its fingerprint, so adding a duplicate never changes the original's.
    """
    seen: dict[str, int] = {}
    unique: list[str] = []
    for value in fingerprints:
        count = seen.get(value, 0)
        seen[value] = count + 1
        if count:
            repeated = hashlib.sha256(f"{value}\x00{count}".encode()).hexdigest()
            value = repeated[:FINGERPRINT_HEX]
        unique.append(value)
    return unique


@dataclass(frozen=True, slots=True)
class QualityIssue:
    description: str
    check_name: str
    fingerprint: str
    severity: Severity
    path: str
    line: int

    def as_json(self) -> dict[str, object]:
        return {
            "description": self.description,
            "check_name": self.check_name,
            "fingerprint": self.fingerprint,
            "severity": self.severity,
            "location": {"path": self.path, "lines": {"begin": self.line}},
        }


def report_json(issues: Iterable[QualityIssue]) -> str:
    """The report's text: a JSON array, ordered by path and line so reruns write the same bytes."""
    ordered = sorted(issues, key=lambda issue: (issue.path, issue.line, issue.fingerprint))
    return json.dumps([issue.as_json() for issue in ordered], indent=2, ensure_ascii=False) + "\n"


def write_report(path: Path, issues: Iterable[QualityIssue]) -> None:
    """Write the report atomically: a job killed mid-write leaves no truncated artifact."""
    text = report_json(issues)
    directory = path.parent if str(path.parent) else Path()
    directory.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(scratch, 0o644)  # mkstemp's 0600 would hide the artifact from other users
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
