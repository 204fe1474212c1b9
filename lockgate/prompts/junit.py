"""JUnit XML reports, in the subset GitLab's unit test report (the merge request widget) reads.

GitLab shows a `<testcase>`'s `classname` as the suite and `name` as the test, `time` in seconds,
`file`, and the text inside `<failure>` (not its `message` attribute, which other readers show, so
both are written) and `<system-out>`. Cases are keyed by classname and name: names must be unique
within a classname. Characters XML 1.0 cannot hold (control characters a model may produce) are
dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

__all__ = ["JUnitCase", "JUnitSuite", "junit_xml", "write_junit"]

NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MESSAGE_LIMIT = 500


@dataclass(frozen=True)
class JUnitCase:
    classname: str
    name: str
    time_s: float
    failure: str | None = None
    """Why the case failed (several lines allowed); None when it passed."""
    failure_type: str = "failure"
    file: str | None = None
    system_out: str | None = None


@dataclass(frozen=True)
class JUnitSuite:
    name: str
    cases: Sequence[JUnitCase]
    timestamp: datetime | None = None

    @property
    def failures(self) -> int:
        return sum(case.failure is not None for case in self.cases)

    @property
    def time_s(self) -> float:
        return sum(case.time_s for case in self.cases)


def junit_xml(suites: Sequence[JUnitSuite], name: str = "lockgate") -> bytes:
    """The report as UTF-8 XML bytes with a declaration."""
    root = ElementTree.Element(
        "testsuites",
        _attributes(
            name=name,
            tests=str(sum(len(suite.cases) for suite in suites)),
            failures=str(sum(suite.failures for suite in suites)),
            errors="0",
            skipped="0",
            time=_seconds(sum(suite.time_s for suite in suites)),
        ),
    )
    for suite in suites:
        stamp = suite.timestamp or datetime.now(UTC)
        element = ElementTree.SubElement(
            root,
            "testsuite",
            _attributes(
                name=suite.name,
                tests=str(len(suite.cases)),
                failures=str(suite.failures),
                errors="0",
                skipped="0",
                time=_seconds(suite.time_s),
                timestamp=stamp.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
            ),
        )
        for case in suite.cases:
            _add_case(element, case)
    ElementTree.indent(root)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def write_junit(path: Path, suites: Sequence[JUnitSuite], name: str = "lockgate") -> None:
    """Write the report to `path`, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_xml(suites, name))


def _add_case(parent: ElementTree.Element, case: JUnitCase) -> None:
    attributes = {"classname": case.classname, "name": case.name}
    if case.file is not None:
        attributes["file"] = case.file
    attributes["time"] = _seconds(case.time_s)
    element = ElementTree.SubElement(parent, "testcase", _attributes(**attributes))
    if case.failure is not None:
        failure = ElementTree.SubElement(
            element,
            "failure",
            _attributes(message=_message(case.failure), type=case.failure_type),
        )
        failure.text = _clean(case.failure)
    if case.system_out:
        ElementTree.SubElement(element, "system-out").text = _clean(case.system_out)


def _attributes(**values: str) -> dict[str, str]:
    return {key: _clean(value) for key, value in values.items()}


def _message(failure: str) -> str:
    """The failure on one line, short enough for an attribute."""
    text = "; ".join(line.strip() for line in failure.splitlines() if line.strip())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _clean(text: str) -> str:
    return NOT_XML.sub("", text)


def _seconds(seconds: float) -> str:
    return f"{max(seconds, 0.0):.3f}"
