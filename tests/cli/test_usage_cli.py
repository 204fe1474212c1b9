"""`lockgate usage` against a SQLite file holding a known ledger: table, CSV and JSON output,
windows, filters, and mistakes that exit 2 naming the option.

Most runs go through typer's CliRunner (in-process, fast); a few through a real process, as a
user runs it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lockgate.cli.main import app
from lockgate.cli.usage import By
from lockgate.storage import Database
from lockgate.storage.usage import usage_values
from lockgate.storage.usage_report import GROUPINGS
from tests.storage.test_usage_report import EVERYTHING, EXPECTED, NUMBERS, ledger, record

MARCH = ("--since", "2025-03-01", "--until", "2025-04-01")
SINCE_HELP = (
    "expected a duration like 30m, 24h, 7d or 2w, or a date or time like 2025-01-31 or "
    "2025-01-31T12:00:00Z"
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with a lockgate.yaml whose SQLite database holds the test ledger."""
    database = f"sqlite:///{tmp_path / 'gateway.db'}"
    (tmp_path / "lockgate.yaml").write_text(f'storage: {{database: "{database}"}}\n')

    async def fill() -> None:
        async with await Database.open(database) as db:
            await db.usage.insert(ledger())

    asyncio.run(fill())
    return tmp_path


def usage(workdir: Path, *args: str) -> Any:
    """`lockgate usage -c workdir/lockgate.yaml *args` in this process."""
    config = str(workdir / "lockgate.yaml")
    return CliRunner().invoke(app, ["usage", "-c", config, *args], catch_exceptions=False)


def table(text: str) -> list[list[str]]:
    """The cells of each line of a printed table (columns are 2+ spaces apart); a rule: `─`."""
    rows = []
    for line in text.splitlines():
        if line and set(line) == {"─"}:
            rows.append(["─"])
        else:
            rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def lockgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"OPENAI_API_KEY", "OLLAMA_HOST"}}
    return subprocess.run(
        [sys.executable, "-m", "lockgate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_groupings_are_the_reports(workdir: Path) -> None:
    assert tuple(By) == GROUPINGS


def test_a_table_with_a_totals_row(workdir: Path) -> None:
    result = usage(workdir, "--by", "team", *MARCH)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert table(result.stdout) == [
        [
            "TEAM",
            "REQUESTS",
            "ERRORS",
            "INPUT TOK",
            "OUTPUT TOK",
            "CACHED TOK",
            "COST USD",
            "ESTIMATED",
            "CACHE HITS",
            "AVG MS",
            "MAX MS",
            "AVG TTFT MS",
        ],
        ["─"],
        ["t1", "2", "0", "300", "150", "10", "0.0040", "1", "0", "300", "400", "50"],
        ["t2", "3", "1", "360", "50", "0", "0.0012", "0", "1", "137", "300", "150"],
        ["─"],
        ["total", "5", "1", "660", "200", "10", "0.0052", "1", "1", "202", "400", "100"],
    ]


def test_a_prompt_table_shows_each_version(workdir: Path) -> None:
    result = usage(workdir, "--by", "prompt", *MARCH)
    assert result.exit_code == 0, result.output
    rows = table(result.stdout)
    assert [row[:3] for row in rows] == [
        ["PROMPT", "VERSION", "REQUESTS"],
        ["─"],
        ["-", "-", "3"],  # requests that used no prompt
        ["summarize", "1.1.0", "1"],
        ["summarize", "1.0.0", "1"],
        ["─"],
        ["total", "5", "1"],  # the totals row leaves the version column empty
    ]
    assert rows[4][-1] == "-"  # no streamed answer: no time to first token


@pytest.mark.parametrize("by", GROUPINGS)
def test_csv_has_a_header_and_one_line_per_group(workdir: Path, by: str) -> None:
    result = usage(workdir, "--by", by, "--format", "csv", *MARCH)
    assert result.exit_code == 0, result.output
    header, *lines = list(csv.reader(io.StringIO(result.stdout)))
    names = header[: len(header) - len(NUMBERS)]
    assert header[len(names) :] == list(NUMBERS)
    got = [
        (
            tuple(value or None for value in line[: len(names)]),
            tuple(_number(value) for value in line[len(names) :]),
        )
        for line in lines
    ]
    assert got == EXPECTED[by]


def _number(text: str) -> float | None:
    return float(text) if text else None


def test_json_is_the_admin_api_report(workdir: Path) -> None:
    result = usage(workdir, "--by", "day", "--format", "json", *MARCH)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"by", "since", "until", "rows", "totals"}
    assert report["by"] == "day"
    assert (report["since"], report["until"]) == ("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z")
    got = [((row.pop("day"),), tuple(row.values())) for row in report["rows"]]
    assert got == EXPECTED["day"]
    assert tuple(report["totals"][name] for name in NUMBERS) == EVERYTHING
    assert list(report["totals"]) == list(NUMBERS)


def test_filters_and_until(workdir: Path) -> None:
    result = usage(workdir, "--by", "model", "--team", "t2", "--format", "json", *MARCH)
    rows = json.loads(result.stdout)["rows"]
    assert [(row["model"], row["requests"], row["cost_usd"]) for row in rows] == [("m1", 3, 0.0012)]
    result = usage(workdir, "--by", "day", "--key", "bob", "--model", "m1", "--format", "json")
    # The default window is the last 7 days: the 2025 ledger is out of it.
    assert json.loads(result.stdout)["rows"] == []
    result = usage(
        workdir,
        "--by",
        "day",
        "--since",
        "2025-03-10T23:00:00Z",
        "--until",
        "2025-03-11T01:00",
        "--format",
        "json",
    )
    rows = json.loads(result.stdout)["rows"]
    assert [(row["day"], row["requests"]) for row in rows] == [("2025-03-10", 1), ("2025-03-11", 1)]


def test_nothing_recorded_is_said_on_stderr(workdir: Path) -> None:
    result = usage(workdir)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("no requests recorded since ")
    result = usage(workdir, "--format", "csv", "--by", "prompt")
    assert result.stdout.splitlines() == ["prompt,prompt_version," + ",".join(NUMBERS)]


def test_the_real_command_with_a_database_url(workdir: Path, tmp_path_factory: Any) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    url = f"sqlite:///{workdir / 'gateway.db'}"
    result = lockgate("usage", "--database", url, "--by", "key", *MARCH, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert [row[:3] for row in table(result.stdout)] == [
        ["KEY", "REQUESTS", "ERRORS"],
        ["─"],
        ["alice", "2", "0"],
        ["bob", "2", "1"],
        ["-", "1", "0"],  # a request without a key (OIDC)
        ["─"],
        ["total", "5", "1"],
    ]


def test_a_bad_since_exits_2_naming_it(workdir: Path) -> None:
    result = lockgate("usage", "--since", "7x", cwd=workdir)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    text = " ".join(result.stderr.replace("│", " ").split())
    assert f"Invalid value for '--since': {SINCE_HELP}; got '7x'" in text
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--until", "tomorrow"), f"Invalid value for '--until': {SINCE_HELP}; got 'tomorrow'"),
        (("--since", "1d", "--until", "2d"), "Invalid value for '--until': '2d' is not after"),
        (("--by", "week"), "Invalid value for '--by': Value error, 'week' is not one of"),
        (("--format", "xml"), "Invalid value for '--format': Value error, 'xml' is not one of"),
        (("--database", "sqlite:///x.db"), "give -c/--config or --database, not both"),
    ],
)
def test_other_mistakes_exit_2_naming_the_option(
    workdir: Path, args: tuple[str, ...], message: str
) -> None:
    result = usage(workdir, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.replace("│", " ").split())


def test_an_unreachable_database_is_one_error_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'gateway.db'}"
    result = CliRunner().invoke(app, ["usage", "--database", url])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot open database {url}: directory {tmp_path / 'missing'} does not exist"
    ]


def test_costs_under_a_hundredth_of_a_cent_show_micro_dollars(workdir: Path) -> None:
    tiny = record("tiny", "2025-05-01T00:00:00", model="m-cheap", cost_micros=42, latency_ms=1)
    big = record(
        "big", "2025-05-02T00:00:00", model="m-big", cost_micros=1_234_567_890, latency_ms=1
    )

    async def add() -> None:
        async with await Database.open(f"sqlite:///{workdir / 'gateway.db'}") as db:
            await db.usage.insert([usage_values(tiny), usage_values(big)])

    asyncio.run(add())
    result = usage(workdir, "--since", "2025-05-01", "--until", "2025-06-01")
    rows = table(result.stdout)
    assert [(row[0], row[6]) for row in rows if len(row) > 6] == [
        ("MODEL", "COST USD"),
        ("m-big", "1,234.567890"),
        ("m-cheap", "0.000042"),
        ("total", "1,234.567932"),
    ]
