"""Code Quality reports: GitLab's format, and fingerprints that survive unrelated edits."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from lockgate.gitlab.quality import (
    REPORT_FILE,
    SEVERITIES,
    QualityIssue,
    at_least,
    fingerprint,
    is_severity,
    normalise_message,
    report_json,
    unique_fingerprints,
    write_report,
)

LINE = '    query = "SELECT * FROM users WHERE name = \'" + name + "\'"'
MESSAGE = "SQL built by string concatenation from `name`: injection."


def test_the_fingerprint_ignores_the_line_number_and_cosmetic_wording() -> None:
    first = fingerprint("app/users.py", MESSAGE, LINE)
    assert len(first) == 32
    assert int(first, 16) >= 0
    # The same issue, the line moved and re-indented, the message re-cased and re-quoted.
    again = fingerprint(
        "app/users.py",
        "sql built by string concatenation from 'name': injection",
        "\t" + LINE.strip(),
    )
    assert again == first


def test_the_fingerprint_changes_with_what_identifies_the_issue() -> None:
    first = fingerprint("app/users.py", MESSAGE, LINE)
    assert fingerprint("app/admins.py", MESSAGE, LINE) != first
    assert fingerprint("app/users.py", "Unused variable.", LINE) != first
    assert fingerprint("app/users.py", MESSAGE, "    return None") != first
    # Without the line's content, the check's name stands in for it.
    assert fingerprint("app/users.py", MESSAGE, "lockgate/code-review") != first


def test_messages_are_normalised() -> None:
    assert normalise_message("  Off-by-one at index 10!  ") == "off-by-one at index #"
    assert normalise_message("Uses “smart” quotes\nand  spaces.") == "uses smart quotes and spaces"


def test_repeated_fingerprints_are_made_unique_keeping_the_first() -> None:
    a, b = fingerprint("x.py", "m", "l"), fingerprint("y.py", "m", "l")
    unique = unique_fingerprints([a, b, a, a])
    assert unique[:2] == [a, b]
    assert len(set(unique)) == 4
    assert unique == unique_fingerprints([a, b, a, a])  # deterministic
    assert all(len(value) == 32 for value in unique)


def test_severities_are_ordered() -> None:
    assert SEVERITIES == ("info", "minor", "major", "critical", "blocker")
    assert at_least("critical", "major")
    assert at_least("major", "major")
    assert not at_least("minor", "major")
    assert is_severity("blocker")
    assert not is_severity("high")


def test_the_report_is_gitlabs_code_quality_format(tmp_path: Path) -> None:
    issues = [
        QualityIssue("Second.", "lockgate/code-review", "f" * 32, "minor", "b.py", 3),
        QualityIssue("First, ünïcode.", "lockgate/code-review", "e" * 32, "critical", "a.py", 9),
    ]
    report = tmp_path / "out" / REPORT_FILE
    write_report(report, issues)
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data == [
        {
            "description": "First, ünïcode.",
            "check_name": "lockgate/code-review",
            "fingerprint": "e" * 32,
            "severity": "critical",
            "location": {"path": "a.py", "lines": {"begin": 9}},
        },
        {
            "description": "Second.",
            "check_name": "lockgate/code-review",
            "fingerprint": "f" * 32,
            "severity": "minor",
            "location": {"path": "b.py", "lines": {"begin": 3}},
        },
    ]
    assert report.read_text(encoding="utf-8") == report_json(reversed(issues))
    assert stat.S_IMODE(report.stat().st_mode) == 0o644
    assert [p.name for p in report.parent.iterdir()] == [REPORT_FILE]


def test_an_empty_report_is_an_empty_array(tmp_path: Path) -> None:
    report = tmp_path / REPORT_FILE
    write_report(report, [])
    assert json.loads(report.read_text()) == []
