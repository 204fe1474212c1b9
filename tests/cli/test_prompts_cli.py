"""`lockgate prompts list|show|render|test` on real prompt folders.

list, show and render run in-process through typer's CliRunner, on a prompts folder written here
and on the repository's own `prompts/`. `test` runs as a real process (as a CI job runs it)
against a real gateway served in-process on loopback, in front of the provider simulator: the
prompts' `params.simulate` script the simulator's answers, so each case's outcome is known.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from lockgate.auth.keys import hash_key
from lockgate.cli.main import app
from lockgate.config.loader import ConfigError
from lockgate.prompts.cases import parse_cases
from lockgate.simulate.server import RunningSimulator
from tests.conftest import config_from_yaml, free_port, running_gateway

REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
API_KEY = "lg-prompts-test-key-0123456789abcdef"

INPUT_SCHEMA = """\
input:
  type: object
  properties:
    text: {type: string, minLength: 1}
  required: [text]
  additionalProperties: false
"""
SENTIMENT_OUTPUT = """\
output:
  type: object
  properties:
    label: {type: string, enum: [positive, negative, neutral]}
    score: {type: number, minimum: -1, maximum: 1}
  required: [label, score]
"""


def sentiment_version(description: str, answer: str) -> str:
    return (
        f"description: {description}\n"
        "model: m-sim\n"
        "params:\n"
        "  temperature: 0\n"
        f"  simulate: {{content: '{answer}'}}\n"
        "messages:\n"
        "  - {role: system, content: Classify the sentiment of the user's text.}\n"
        "  - role: user\n"
        '    content: "Text: {{ text }}"\n' + INPUT_SCHEMA + SENTIMENT_OUTPUT
    )


PROMPT_FILES = {
    "sentiment/1.0.0.yaml": sentiment_version(
        "Sentiment of a text", '{"label": "positive", "score": 0.8}'
    ),
    "sentiment/1.1.0.yaml": sentiment_version(
        "Sentiment of a text, calibrated", '{"label": "positive", "score": 0.9}'
    ),
    "sentiment/labels.yaml": "production: 1.0.0\ncanary: {version: 1.1.0, weight: 10}\n",
    "summary/1.0.0.yaml": (
        "description: A one-line summary\n"
        "model: m-sim\n"
        "params: {simulate: {content: A short summary of the text.}}\n"
        "messages:\n"
        '  - {role: user, content: "Summarize in one line: {{ text }}"}\n' + INPUT_SCHEMA
    ),
    "slow/1.0.0.yaml": (
        "model: m-sim\n"
        "params: {simulate: {content: done, latency_ms: 400}}\n"
        "messages: [{role: user, content: '{{ text }}'}]\n" + INPUT_SCHEMA
    ),
    # The model's answer breaks the output schema: the gateway answers 502 invalid_output.
    "broken/1.0.0.yaml": sentiment_version("Always wrong", '{"label": "great"}'),
}

PASSING_TESTS = {
    "sentiment/tests.yaml": """\
tests:
  - name: praise is positive
    input: {text: "Great work, thanks!"}
    expect: {label: positive, score: {gte: 0.3}}
    max_latency_ms: 10000
    max_cost_usd: 1
  - name: score in range
    input: {text: "Fine."}
    expect: {score: {gt: 0, lte: 1}, label: {in: [positive, neutral]}}
    schema_valid: true
""",
    "summary/tests.yaml": """\
tests:
  - name: mentions a summary
    input: {text: "A long text about many things."}
    expect: {text: {contains: summary}}
""",
}

FAILING_TESTS = {
    "sentiment/tests.yaml": """\
tests:
  - name: praise is positive
    input: {text: "Great work, thanks!"}
    expect: {label: positive}
  - name: complaint is negative
    input: {text: "This is broken again."}
    expect: {label: negative, score: {lt: -0.3}}
  - name: too expensive
    input: {text: "Fine."}
    max_cost_usd: 0.0000001
  - name: bad input
    input: {txt: "typo in the field name"}
  - name: missing field
    input: {text: "Fine."}
    expect: {"findings.0.severity": high}
""",
    "broken/tests.yaml": """\
tests:
  - name: any answer
    input: {text: "hello"}
""",
}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return write(tmp_path / "prompts", PROMPT_FILES)


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["prompts", *args], catch_exceptions=False)


def rows(text: str) -> list[list[str]]:
    """The cells of each line of a printed table (columns are 2+ spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


# -- list -----------------------------------------------------------------------------------------


def test_list_shows_versions_labels_and_the_default_description(prompts: Path) -> None:
    result = cli("list", "--dir", str(prompts))
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert table[0] == ["NAME", "VERSIONS", "LABELS", "DESCRIPTION"]
    assert ["broken", "1.0.0", "-", "Always wrong"] in table
    # The default reference takes the production label: 1.0.0's description, not 1.1.0's.
    assert ["sentiment", "1.0.0, 1.1.0", "production → 1.0.0", "Sentiment of a text"] in table
    assert ["canary → 1.1.0 (10%)"] in table  # the second label, on the next line
    assert ["summary", "1.0.0", "-", "A one-line summary"] in table


def test_list_prints_every_load_issue_and_exits_1(prompts: Path) -> None:
    (prompts / "summary" / "1.0.0.yaml").write_text(
        "model: m-sim\nmesages: []\ninput: {type: object}\n"
    )
    (prompts / "sentiment" / "labels.yaml").write_text("production: 9.9.9\n")
    result = cli("list", "--dir", str(prompts))
    assert result.exit_code == 1
    assert "prompts/summary/1.0.0.yaml:2: mesages: unknown key 'mesages'" in result.stderr
    assert "prompts/sentiment/labels.yaml:1: production: version 9.9.9 does not exist" in (
        result.stderr
    )
    assert "problems in" in result.stderr


def test_list_a_missing_folder_exits_1(tmp_path: Path) -> None:
    result = cli("list", "--dir", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "folder does not exist" in result.stderr


# -- show -----------------------------------------------------------------------------------------


def test_show_a_label_gives_the_version_and_its_templates(prompts: Path) -> None:
    result = cli("show", "sentiment@canary", "--dir", str(prompts))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "sentiment@1.1.0  (label canary)" in out
    assert "Sentiment of a text, calibrated" in out
    assert "m-sim" in out
    assert '"temperature": 0' in out
    assert "input schema" in out
    assert '"minLength": 1' in out
    assert "output schema" in out
    assert '"positive",' in out
    # The templates as written, not rendered.
    assert "user (template)" in out
    assert "Text: {{ text }}" in out
    assert "Classify the sentiment of the user's text." in out


def test_show_ranges_exact_versions_and_free_text_prompts(prompts: Path) -> None:
    assert "sentiment@1.1.0" in cli("show", "sentiment@^1", "--dir", str(prompts)).stdout
    assert "sentiment@1.0.0" in cli("show", "sentiment@1.0.0", "--dir", str(prompts)).stdout
    summary = cli("show", "summary", "--dir", str(prompts)).stdout
    assert "summary@1.0.0" in summary
    assert "no output schema" in summary


def test_show_an_unknown_reference_says_what_exists(prompts: Path) -> None:
    result = cli("show", "sentiment@2.0.0", "--dir", str(prompts))
    assert result.exit_code == 1
    assert "no version 2.0.0 (versions: 1.0.0, 1.1.0; labels: canary, production)" in (
        result.stderr
    )
    result = cli("show", "sentimnt", "--dir", str(prompts))
    assert result.exit_code == 1
    assert "did you mean 'sentiment'?" in result.stderr


# -- render ---------------------------------------------------------------------------------------


def test_render_prints_the_messages(prompts: Path) -> None:
    result = cli("render", "sentiment", "--input", '{"text": "I love it"}', "--dir", str(prompts))
    assert result.exit_code == 0, result.output
    assert "sentiment@1.0.0" in result.stdout
    assert "user (rendered)" in result.stdout
    assert "Text: I love it" in result.stdout


def test_render_json_from_a_file(prompts: Path, tmp_path: Path) -> None:
    data = tmp_path / "input.json"
    data.write_text('{"text": "so-so"}')
    args = ("render", "summary@1.0.0", "--input", f"@{data}", "--dir", str(prompts), "--json")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"role": "user", "content": "Summarize in one line: so-so"}
    ]


def test_render_prints_every_input_violation_and_exits_1(prompts: Path) -> None:
    result = cli("render", "sentiment", "--input", '{"txt": 1}', "--dir", str(prompts))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any("input:" in line and "'text' is a required property" in line for line in lines)
    assert any("input:" in line and "'txt'" in line for line in lines)
    assert "error: the input is not valid for sentiment@1.0.0 (2 problems)" in result.stderr


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("{not json", "--input is not JSON"),
        ("[1, 2]", "--input: expected a JSON object"),
        ("@/nonexistent/input.json", "cannot read /nonexistent/input.json"),
    ],
)
def test_render_a_bad_input_option_exits_2(prompts: Path, given: str, message: str) -> None:
    result = cli("render", "sentiment", "--input", given, "--dir", str(prompts))
    assert result.exit_code == 2
    assert message in result.stderr


# -- the repository's prompts ---------------------------------------------------------------------


def repo_prompt_names() -> list[str]:
    return sorted(p.name for p in REPO_PROMPTS.iterdir() if p.is_dir() and p.name[0] not in "._")


def test_the_repository_prompts_list_show_and_their_tests_parse() -> None:
    result = cli("list", "--dir", str(REPO_PROMPTS))
    assert result.exit_code == 0, result.output
    listed = [row[0] for row in rows(result.stdout)[1:]]
    for name in repo_prompt_names():
        assert name in listed
        shown = cli("show", name, "--dir", str(REPO_PROMPTS))
        assert shown.exit_code == 0, shown.output
        assert f"{name}@" in shown.stdout
        tests = REPO_PROMPTS / name / "tests.yaml"
        if tests.is_file():
            parse_cases(tests.read_text(), source=str(tests))  # raises on any mistake


# -- tests.yaml validation ------------------------------------------------------------------------


def test_tests_yaml_mistakes_are_listed_with_file_and_line(prompts: Path) -> None:
    write(
        prompts,
        {
            "sentiment/tests.yaml": """\
tests:
  - name: one
    input: {text: hi}
    expect: {score: {gte: 0.3, gtee: 1}, label: {in: positive}}
    max_latency: 100
  - name: one
    input: {text: hi}
""",
            "summary/tests.yaml": "tests:\n  - name: two\n    expect: {text: x}\n",
        },
    )
    # Nothing is sent: the files are checked before any call (this URL has no gateway).
    result = cli("test", "--dir", str(prompts), "--url", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1
    err = result.stderr
    sentiment, summary = prompts / "sentiment" / "tests.yaml", prompts / "summary" / "tests.yaml"
    assert (
        f"{sentiment}:4: tests[0].expect.score.gtee: unknown key 'gtee' (did you mean 'gte'?)"
        in err
    )
    assert f"{sentiment}:4: tests[0].expect.label.in: Input should be a valid list" in err
    assert (
        f"{sentiment}:5: tests[0].max_latency: unknown key 'max_latency' (did you mean 'max_latency_ms'?)"
        in err
    )
    assert f"{summary}:2: tests[0].input: required key is missing" in err
    assert "error: 4 problems in the tests files" in err
    # Once the rest is right, a repeated case name is the one mistake left.
    (prompts / "sentiment" / "tests.yaml").write_text(
        "tests:\n  - {name: one, input: {text: a}}\n  - {name: one, input: {text: b}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_cases((prompts / "sentiment" / "tests.yaml").read_text(), source="t.yaml")
    assert [str(issue) for issue in caught.value.issues] == [
        "t.yaml:3: tests[1].name: duplicate case name 'one' (names must be unique)"
    ]


def test_test_usage_mistakes_exit_2(prompts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(prompts, PASSING_TESTS)
    url = f"http://127.0.0.1:{free_port()}"
    cases = [
        (["nope"], "no prompt named 'nope'"),
        (["broken"], "has no"),  # broken has no tests.yaml
        (["sentiment", "sentiment"], "named twice"),
        (["sentiment@1.0.0", "--version", "1.1.0"], "not both"),
        (["--url", "localhost:4000"], "expected an http:// or https:// URL"),
    ]
    for args, message in cases:
        result = cli("test", "--dir", str(prompts), "--url", url, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    write(prompts.parent / "empty", {"x/1.0.0.yaml": PROMPT_FILES["summary/1.0.0.yaml"]})
    monkeypatch.chdir(prompts.parent)  # a short path: rich wraps the error box at 80 columns
    result = cli("test", "--dir", "empty", "--url", url)
    assert result.exit_code == 2
    assert "no prompt in empty has a tests.yaml" in result.stderr


def test_an_unreachable_gateway_exits_2(prompts: Path) -> None:
    write(prompts, PASSING_TESTS)
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("test", "--dir", str(prompts), "--url", url)
    assert result.exit_code == 2
    assert f"error: cannot reach the gateway at {url}" in result.stderr


# -- test, against a running gateway --------------------------------------------------------------


@dataclass(frozen=True)
class Gateway:
    url: str
    prompts: Path


def gateway_yaml(simulator: RunningSimulator, prompts: Path, keys: bool = False) -> str:
    text = f"""\
providers:
  - {{name: sim, type: openai, base_url: "{simulator.base_url}", api_key: x}}
routing: {{retries: 0, timeout_s: 10}}
models:
  - name: m-sim
    targets: [{{provider: sim, model: sim-small}}]
    price: {{input: 1, output: 2}}
prompts: {{dir: "{prompts}"}}
"""
    if keys:
        text += f'keys:\n  - {{name: ci, hash: "{hash_key(API_KEY)}"}}\n'
    return text


@pytest.fixture(scope="module")
async def gateway(
    simulator: RunningSimulator, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    prompts = write(tmp_path_factory.mktemp("served") / "prompts", PROMPT_FILES)
    async with running_gateway(config_from_yaml(gateway_yaml(simulator, prompts))) as url:
        yield Gateway(url, prompts)


def folder_with(gateway: Gateway, root: Path, tests: dict[str, str]) -> Path:
    """A copy of the served prompts (the same versions) with these tests.yaml files."""
    folder = root / "prompts"
    shutil.copytree(gateway.prompts, folder)
    return write(folder, tests)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


async def lockgate(*args: str) -> Run:
    """`lockgate *args` as a real process; the gateway keeps serving on this event loop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lockgate",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())


def result_rows(stdout: str) -> dict[str, list[str]]:
    """Table rows by case name: [prompt, version, case, result, ms, cost, reason...]."""
    found = {}
    for row in rows(stdout):
        if len(row) >= 6 and row[3] in ("PASS", "FAIL"):
            found[row[2]] = row
    return found


async def test_all_cases_pass_exit_0_and_the_junit_report_says_so(
    gateway: Gateway, tmp_path: Path
) -> None:
    folder = folder_with(gateway, tmp_path, PASSING_TESTS)
    report = tmp_path / "reports" / "prompts.xml"
    run = await lockgate(
        "prompts", "test", "--dir", str(folder), "--url", gateway.url, "--junit", str(report)
    )
    assert run.code == 0, run.stdout + run.stderr
    table = result_rows(run.stdout)
    assert set(table) == {"praise is positive", "score in range", "mentions a summary"}
    praise = table["praise is positive"]
    assert praise[:4] == ["sentiment", "1.0.0", "praise is positive", "PASS"]
    assert int(praise[4].replace(",", "")) > 0  # latency in ms
    assert float(praise[5]) > 0  # the model is priced: the gateway reported a cost
    assert table["mentions a summary"][:4] == ["summary", "1.0.0", "mentions a summary", "PASS"]
    assert re.search(r"3 passed, 0 failed in \d+\.\ds", run.stdout)

    root = ElementTree.parse(report).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("3", "0")
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert set(suites) == {"sentiment", "summary"}
    assert (suites["sentiment"].get("tests"), suites["sentiment"].get("failures")) == ("2", "0")
    case = suites["sentiment"].find("testcase[@name='praise is positive']")
    assert case is not None
    assert case.get("classname") == "sentiment"
    assert case.get("file") == str(folder / "sentiment" / "tests.yaml")
    assert 0 < float(case.get("time", "0")) < 10  # seconds
    assert case.find("failure") is None
    out = case.findtext("system-out") or ""
    assert "version: 1.0.0" in out
    assert '"label": "positive"' in out


async def test_failed_expectations_exit_1_with_reasons_in_the_table_and_report(
    gateway: Gateway, tmp_path: Path
) -> None:
    folder = folder_with(gateway, tmp_path, FAILING_TESTS)
    report = tmp_path / "junit.xml"
    run = await lockgate(
        "prompts",
        "test",
        "--dir",
        str(folder),
        "--url",
        gateway.url,
        "--junit",
        str(report),
        "--concurrency",
        "2",
    )
    assert run.code == 1, run.stdout + run.stderr
    table = result_rows(run.stdout)
    assert table["praise is positive"][3] == "PASS"
    negative = table["complaint is negative"]
    assert negative[3] == "FAIL"
    assert 'label: expected "negative", got "positive"' in run.stdout
    assert "score: expected < -0.3, got 0.8" in run.stdout
    assert re.search(r"cost \$[0-9.e-]+ over max_cost_usd 1e-07", run.stdout)
    assert "HTTP 422 invalid_input:" in run.stdout
    assert "input: " in run.stdout
    assert "'text' is a required property" in run.stdout
    assert "findings.0.severity: missing from the answer" in run.stdout
    assert table["any answer"][:4] == ["broken", "-", "any answer", "FAIL"]
    assert "HTTP 502 invalid_output:" in run.stdout
    assert "raw output:" in run.stdout
    assert re.search(r"1 passed, 5 failed in \d+\.\ds", run.stdout)

    root = ElementTree.parse(report).getroot()
    assert (root.get("tests"), root.get("failures")) == ("6", "5")
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert (suites["sentiment"].get("tests"), suites["sentiment"].get("failures")) == ("5", "4")
    assert (suites["broken"].get("tests"), suites["broken"].get("failures")) == ("1", "1")
    failures = {
        case.get("name"): case.find("failure")
        for case in root.iter("testcase")
        if case.find("failure") is not None
    }
    assert set(failures) == {
        "complaint is negative",
        "too expensive",
        "bad input",
        "missing field",
        "any answer",
    }
    negative_failure = failures["complaint is negative"]
    assert negative_failure is not None
    assert negative_failure.get("message") == (
        'label: expected "negative", got "positive"; score: expected < -0.3, got 0.8'
    )
    assert negative_failure.text == (
        'label: expected "negative", got "positive"\nscore: expected < -0.3, got 0.8'
    )
    assert negative_failure.get("type") == "expectation"
    bad_input = failures["bad input"]
    assert bad_input is not None
    assert bad_input.get("type") == "request"
    assert (bad_input.get("message") or "").startswith("HTTP 422 invalid_input:")


async def test_version_selects_what_is_tested(gateway: Gateway, tmp_path: Path) -> None:
    folder = folder_with(gateway, tmp_path, PASSING_TESTS)
    run = await lockgate(
        "prompts", "test", "sentiment", "--dir", str(folder), "--url", gateway.url,
        "--version", "1.1.0",
    )  # fmt: skip
    assert run.code == 0, run.stdout + run.stderr
    table = result_rows(run.stdout)
    assert set(table) == {"praise is positive", "score in range"}  # only the prompt named
    assert {row[1] for row in table.values()} == {"1.1.0"}
    run = await lockgate(
        "prompts", "test", "sentiment@canary", "summary", "--dir", str(folder), "--url", gateway.url
    )
    assert run.code == 0, run.stdout + run.stderr
    versions = {name: row[1] for name, row in result_rows(run.stdout).items()}
    assert versions == {
        "praise is positive": "1.1.0",
        "score in range": "1.1.0",
        "mentions a summary": "1.0.0",
    }


async def test_a_gateway_with_keys_needs_the_key(
    simulator: RunningSimulator, gateway: Gateway, tmp_path: Path
) -> None:
    folder = folder_with(gateway, tmp_path, PASSING_TESTS)
    config = config_from_yaml(gateway_yaml(simulator, gateway.prompts, keys=True))
    async with running_gateway(config) as url:
        refused = await lockgate("prompts", "test", "--dir", str(folder), "--url", url)
        assert refused.code == 2, refused.stdout + refused.stderr
        assert "error: the gateway refused the key (HTTP 401)" in refused.stderr
        accepted = await lockgate(
            "prompts", "test", "--dir", str(folder), "--url", url, "--key", API_KEY
        )
        assert accepted.code == 0, accepted.stdout + accepted.stderr
        assert "3 passed, 0 failed" in accepted.stdout


async def test_latency_ceilings_and_timeouts_fail_the_case(
    gateway: Gateway, tmp_path: Path
) -> None:
    tests = """\
tests:
  - name: too slow
    input: {text: hi}
    max_latency_ms: 100
"""
    folder = folder_with(gateway, tmp_path, {"slow/tests.yaml": tests})
    args = ("prompts", "test", "slow", "--dir", str(folder), "--url", gateway.url)
    run = await lockgate(*args)
    assert run.code == 1, run.stdout + run.stderr
    assert re.search(r"latency \d+ ms over max_latency_ms 100", run.stdout)
    run = await lockgate(*args, "--timeout", "0.1")
    assert run.code == 1, run.stdout + run.stderr
    assert result_rows(run.stdout)["too slow"][:6] == ["slow", "-", "too slow", "FAIL", "-", "-"]
    assert "no answer within 0.1 s" in run.stdout


async def test_answers_are_checked_against_the_local_output_schema(
    gateway: Gateway, tmp_path: Path
) -> None:
    """The answered version's output schema is read from --dir: here, a stricter copy."""
    tests = """\
tests:
  - name: checked
    input: {text: hi}
  - name: not checked
    input: {text: hi}
    schema_valid: false
"""
    free_text = """\
tests:
  - name: free text, nothing to check
    input: {text: hi}
  - name: free text, a schema is insisted on
    input: {text: hi}
    schema_valid: true
"""
    folder = folder_with(
        gateway, tmp_path, {"sentiment/tests.yaml": tests, "summary/tests.yaml": free_text}
    )
    version = folder / "sentiment" / "1.0.0.yaml"
    version.write_text(version.read_text().replace("maximum: 1", "maximum: 0.5"))
    run = await lockgate("prompts", "test", "--dir", str(folder), "--url", gateway.url)
    assert run.code == 1, run.stdout + run.stderr
    table = result_rows(run.stdout)
    assert table["checked"][3] == "FAIL"
    assert "output schema: $.score: 0.8 is greater than the maximum of 0.5" in run.stdout
    assert table["not checked"][3] == "PASS"
    assert table["free text, nothing to check"][3] == "PASS"
    assert table["free text, a schema is insisted on"][3] == "FAIL"
    assert "schema_valid: the answered version has no output schema" in run.stdout
