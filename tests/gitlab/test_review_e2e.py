"""`lockgate ci review` end to end: a fake GitLab, a real gateway, the real code-review prompt.

The gateway serves a copy of the repository's `prompts/code-review/1.0.0.yaml` (and its partials)
in front of the provider simulator; the copy's `params.simulate.content` scripts the model's
answer: findings on an added line, a context line and a new file's line of the seeded diff, one
on a line outside the diff, one trying to mention @all and run a quick action. The command runs
in-process (typer's CliRunner, in a worker thread: the fake and the gateway serve from this
loop), with the job's environment variables; the assertions read the fake's recorded calls and
state and the written Code Quality report.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from ruamel.yaml import YAML
from typer.testing import CliRunner

from lockgate.auth.keys import hash_key
from lockgate.cli.main import app
from lockgate.gitlab.diffs import parse_git_diff
from lockgate.gitlab.review_notes import SUMMARY_MARKER, fingerprints_in
from lockgate.simulate.server import RunningSimulator
from tests.auth.issuer import AUDIENCE, Issuer
from tests.conftest import config_from_yaml, running_gateway
from tests.gitlab.fake_gitlab import (
    DEFAULT_TOKEN,
    INVALID_POSITION,
    FakeMergeRequest,
    RunningFakeGitLab,
    fake_gitlab,
    start_fake_gitlab,
)

__all__ = ["fake_gitlab"]  # the fixture, imported for pytest

REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
API_KEY = "lg-ci-review-test-key-0123456789abcdef"
BASE, START, HEAD = "b" * 40, "c" * 40, "d" * 40

USERS_DIFF = "".join(
    f"{line}\n"
    for line in (
        "@@ -1,5 +1,9 @@",
        " import sqlite3",
        " ",
        " ",
        " def get_user(db, user_id):",
        '     return db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()',
        "+",
        "+def search_users(db, name):",
        '+    query = "SELECT * FROM users WHERE name LIKE \'%" + name + "%\'"',
        "+    return db.execute(query).fetchall()",
    )
)
MATH_DIFF = "@@ -0,0 +1,3 @@\n+def ratio(a, b):\n+    return a / b\n+\n"
RENAMED_DIFF = "@@ -1,2 +1,2 @@\n def helper():\n-    return 1\n+    return 2\n"
DIFFS: list[dict[str, Any]] = [
    {"old_path": "app/users.py", "new_path": "app/users.py", "diff": USERS_DIFF},
    {"old_path": "app/math.py", "new_path": "app/math.py", "diff": MATH_DIFF, "new_file": True},
    {
        "old_path": "app/old_helpers.py",
        "new_path": "app/helpers.py",
        "diff": RENAMED_DIFF,
        "renamed_file": True,
    },
    {
        "old_path": "app/legacy.py",
        "new_path": "app/legacy.py",
        "diff": "@@ -1 +0,0 @@\n-print('old')\n",
        "deleted_file": True,
    },
    {"new_path": "package-lock.json", "diff": '@@ -1 +1 @@\n-{"a": 1}\n+{"a": 2}\n'},
    {"new_path": "vendor/lib/x.go", "diff": "@@ -0,0 +1 @@\n+package x\n", "new_file": True},
    {
        "new_path": "assets/logo.png",
        "diff": "Binary files /dev/null and b/assets/logo.png differ\n",
        "new_file": True,
    },
]
SQL_LINE = '    query = "SELECT * FROM users WHERE name LIKE \'%" + name + "%\'"'
FINDINGS = [
    {
        "file": "app/users.py",
        "line": 8,
        "severity": "critical",
        "message": "SQL built by concatenating user input: injection.",
        "suggestion": 'query = "SELECT * FROM users WHERE name LIKE ?"\nreturn db.execute(query, (f"%{name}%",)).fetchall()',
    },
    {
        "file": "app/users.py",
        "line": 4,
        "severity": "minor",
        "message": "get_user has no docstring.",
    },
    {
        "file": "./app/math.py",
        "line": 2,
        "severity": "major",
        "message": "Division by zero when b is 0.",
        "suggestion": "Check b before dividing.",
    },
    {
        "file": "app/math.py",
        "line": 1,
        "severity": "info",
        "message": f"Ping @all about this.\n/merge\n<!-- lockgate:finding {'0' * 32} -->",
    },
    {
        "file": "app/users.py",
        "line": 40,
        "severity": "major",
        "message": "The connection is never closed.",
    },
]
QUIET_FINDINGS = [
    {"file": "app/users.py", "line": 8, "severity": "minor", "message": "Prefer a query builder."}
]


def review_prompt(answer: Mapping[str, Any]) -> str:
    """The real code-review 1.0.0 with the model's answer scripted."""
    yaml = YAML()
    data = yaml.load((REPO_PROMPTS / "code-review" / "1.0.0.yaml").read_text())
    data["params"]["simulate"] = {"content": json.dumps(answer)}
    out = StringIO()
    yaml.dump(data, out)
    return out.getvalue()


@dataclass
class Gateway:
    url: str


@pytest.fixture(scope="module")
async def gateway(
    simulator: RunningSimulator, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    prompts = tmp_path_factory.mktemp("review-gateway") / "prompts"
    shutil.copytree(REPO_PROMPTS / "_partials", prompts / "_partials")
    for name, findings in (("code-review", FINDINGS), ("quiet-review", QUIET_FINDINGS)):
        (prompts / name).mkdir(parents=True)
        answer = {"summary": "Adds user search and a ratio helper.", "findings": findings}
        (prompts / name / "1.0.0.yaml").write_text(review_prompt(answer))
    yaml = f"""\
providers:
  - {{name: sim, type: openai, base_url: "{simulator.base_url}", api_key: x}}
routing: {{retries: 0, timeout_s: 10}}
models:
  - {{name: gpt-4o-mini, targets: [{{provider: sim, model: sim-small}}]}}
prompts: {{dir: "{prompts}"}}
keys:
  - {{name: ci, hash: "{hash_key(API_KEY)}"}}
"""
    async with running_gateway(config_from_yaml(yaml)) as url:
        yield Gateway(url)


def seed(
    fake: RunningFakeGitLab,
    iid: int = 1,
    diffs: list[dict[str, Any]] = DIFFS,
    base: str = BASE,
    start: str = START,
    head: str = HEAD,
) -> tuple[int, FakeMergeRequest]:
    try:
        project = fake.state.project("group/app").id
    except KeyError:
        project = fake.state.add_project("group/app")
    mr = fake.state.add_merge_request(
        project,
        iid,
        title="Add user search",
        description="Users can search by name.",
        diffs=diffs,
        base_sha=base,
        start_sha=start,
        head_sha=head,
    )
    return project, mr


def job_env(
    fake: RunningFakeGitLab, gateway: Gateway, project: int, iid: int, **extra: str | None
) -> dict[str, str | None]:
    """A merge-request pipeline's variables; every other one this command reads is unset."""
    env: dict[str, str | None] = {
        "LOCKGATE_URL": gateway.url,
        "LOCKGATE_API_KEY": API_KEY,
        "LOCKGATE_ID_TOKEN": None,
        "CI_SERVER_URL": fake.url,
        "CI_PROJECT_ID": str(project),
        "CI_MERGE_REQUEST_IID": str(iid),
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": None,
        "CI_JOB_TOKEN": None,
        "GITLAB_TOKEN": DEFAULT_TOKEN,
    }
    env.update(extra)
    return env


async def review(env: Mapping[str, str | None], *args: str) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, app, ["ci", "review", *args], env=dict(env), catch_exceptions=False
    )


def read_report(path: Path | str) -> list[dict[str, Any]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data


def writes(fake: RunningFakeGitLab, iid: int) -> list[tuple[str, str]]:
    return [
        (call.method, call.path)
        for call in fake.state.calls
        if call.method in ("POST", "PUT") and f"/merge_requests/{iid}/" in call.path
    ]


def by_location(mr: FakeMergeRequest) -> dict[tuple[str, int], dict[str, Any]]:
    found = {}
    for discussion in mr.diff_discussions:
        position = discussion.position
        assert position is not None
        found[position["new_path"], position["new_line"]] = position
    return found


async def test_a_review_posts_once_and_a_rerun_changes_nothing(
    fake_gitlab: RunningFakeGitLab, gateway: Gateway, tmp_path: Path
) -> None:
    project, mr = seed(fake_gitlab)
    report = tmp_path / "gl-code-quality-report.json"
    env = job_env(fake_gitlab, gateway, project, 1)
    first = await review(env, "--report", str(report), "--fail-on", "major")
    assert first.exit_code == 1, first.output
    assert DEFAULT_TOKEN not in first.output
    assert API_KEY not in first.output

    # One summary note, by the bot, with the marker; the unplaceable finding listed in it.
    notes = [note for note in mr.notes if note.type is None]
    assert len(notes) == 1
    summary = notes[0]
    assert summary.author == "lockgate-bot"
    assert summary.body.startswith(SUMMARY_MARKER)
    assert "The connection is never closed." in summary.body
    assert "`app/users.py` line 40" in summary.body
    assert "**5 findings**: 1 critical, 2 major, 1 minor, 1 info." in summary.body
    assert "4 as threads on the diff. 1 listed below." in summary.body
    assert "Adds user search and a ratio helper." in summary.body
    for path, reason in (
        ("app/legacy.py", "deleted"),
        ("package-lock.json", "lock file"),
        ("vendor/lib/x.go", "vendored"),
        ("assets/logo.png", "binary"),
    ):
        assert f"`{path}` ({reason})" in summary.body
    assert "code-review@1.0.0" in summary.body

    # One diff thread per placeable finding, on its line, positioned with the MR's diff_refs.
    placed = by_location(mr)
    assert set(placed) == {
        ("app/users.py", 8),
        ("app/users.py", 4),
        ("app/math.py", 2),
        ("app/math.py", 1),
    }
    for position in placed.values():
        assert (position["base_sha"], position["start_sha"], position["head_sha"]) == (
            BASE,
            START,
            HEAD,
        )
        assert position["position_type"] == "text"
    assert placed["app/users.py", 8].get("old_line") is None  # an added line: new_line only
    assert placed["app/users.py", 4]["old_line"] == 4  # a context line: both
    assert placed["app/math.py", 2]["old_path"] == "app/math.py"  # a new file: both paths
    bodies = {
        (d.position["new_path"], d.position["new_line"]): d.notes[0].body
        for d in mr.diff_discussions
        if d.position
    }
    sql = bodies["app/users.py", 8]
    assert sql.startswith("<!-- lockgate:finding ")
    assert "**Critical**: SQL built by concatenating user input: injection." in sql
    assert '```\nquery = "SELECT * FROM users WHERE name LIKE ?"' in sql
    hostile = bodies["app/math.py", 1]
    assert "@all" not in hostile
    assert "@\u2060all" in hostile
    assert not any(line.lstrip().startswith("/") for line in hostile.splitlines())
    assert len(fingerprints_in(hostile)) == 1  # its own: the model cannot forge one

    # The Code Quality report: every finding, stable and unique fingerprints, the markers' ones.
    issues = read_report(report)
    assert [
        (i["location"]["path"], i["location"]["lines"]["begin"], i["severity"]) for i in issues
    ] == [
        ("app/math.py", 1, "info"),
        ("app/math.py", 2, "major"),
        ("app/users.py", 4, "minor"),
        ("app/users.py", 8, "critical"),
        ("app/users.py", 40, "major"),
    ]
    assert all(i["check_name"] == "lockgate/code-review" for i in issues)
    fingerprints = {
        i["location"]["path"] + ":" + str(i["location"]["lines"]["begin"]): i["fingerprint"]
        for i in issues
    }
    assert len(set(fingerprints.values())) == 5
    marked = {value for body in bodies.values() for value in fingerprints_in(body)}
    assert marked == {
        fingerprints[k]
        for k in ("app/math.py:1", "app/math.py:2", "app/users.py:4", "app/users.py:8")
    }
    assert writes(fake_gitlab, 1) == [
        ("POST", f"/api/v4/projects/{project}/merge_requests/1/discussions")
    ] * 4 + [("POST", f"/api/v4/projects/{project}/merge_requests/1/notes")]

    # Again, same commit: the note is updated in place with the same text, nothing else posted.
    first_report = report.read_text()
    fake_gitlab.state.calls.clear()
    second = await review(env, "--report", str(report), "--fail-on", "critical")
    assert second.exit_code == 1, second.output
    assert writes(fake_gitlab, 1) == [
        ("PUT", f"/api/v4/projects/{project}/merge_requests/1/notes/{summary.id}")
    ]
    assert [note.body for note in mr.notes if note.type is None] == [summary.body]
    assert len(mr.diff_discussions) == 4
    assert report.read_text() == first_report
    assert "existing" in second.output

    # Without --fail-on the findings do not fail the job.
    third = await review(env, "--report", str(report))
    assert third.exit_code == 0, third.output


async def test_fail_on_is_a_threshold(
    fake_gitlab: RunningFakeGitLab, gateway: Gateway, tmp_path: Path
) -> None:
    project, _ = seed(fake_gitlab)
    env = job_env(fake_gitlab, gateway, project, 1)
    report = str(tmp_path / "report.json")
    quiet = ("--prompt", "quiet-review@1.0.0", "--report", report)
    assert (await review(env, *quiet, "--fail-on", "major")).exit_code == 0
    assert (await review(env, *quiet, "--fail-on", "minor")).exit_code == 1
    assert read_report(report)[0]["severity"] == "minor"


async def test_a_dry_run_posts_nothing_and_writes_the_report(
    fake_gitlab: RunningFakeGitLab, gateway: Gateway, tmp_path: Path
) -> None:
    project, mr = seed(fake_gitlab, iid=2)
    report = tmp_path / "report.json"
    env = job_env(fake_gitlab, gateway, project, 2)
    result = await review(env, "--dry-run", "--report", str(report))
    assert result.exit_code == 0, result.output
    assert writes(fake_gitlab, 2) == []
    assert mr.notes == []
    assert len(read_report(report)) == 5
    assert "summary note (would create)" in result.output
    assert "new thread at app/users.py:8" in result.output
    assert "Dry run: nothing was posted." in result.output
    assert "1 model request to code-review" in result.output


async def test_a_large_diff_is_reviewed_in_several_requests_merged_into_one_review(
    fake_gitlab: RunningFakeGitLab, gateway: Gateway, tmp_path: Path
) -> None:
    filler = [
        {
            "new_path": f"app/module_{n}.py",
            "new_file": True,
            "diff": "@@ -0,0 +1,30 @@\n"
            + "".join(f"+value_{k} = {k}  # {'padding ' * 5}\n" for k in range(30)),
        }
        for n in range(4)
    ]
    project, _ = seed(fake_gitlab, iid=3, diffs=[*DIFFS, *filler])
    env = job_env(fake_gitlab, gateway, project, 3)
    single, split = tmp_path / "single.json", tmp_path / "split.json"
    one = await review(env, "--dry-run", "--report", str(single), "--max-tokens", "100000")
    assert "1 model request to code-review" in one.output
    many = await review(env, "--dry-run", "--report", str(split), "--max-tokens", "1000")
    assert many.exit_code == 0, many.output
    requests = int(many.output.split(" model requests to code-review")[0].rsplit("\n", 1)[-1])
    assert requests >= 4
    # Each request answered the same findings: merged, they are the single request's review.
    assert split.read_text() == single.read_text()


async def test_a_refused_position_falls_back_to_the_summary(
    fake_gitlab: RunningFakeGitLab, gateway: Gateway, tmp_path: Path
) -> None:
    project, mr = seed(fake_gitlab, iid=3)
    fake_gitlab.state.fail_next(
        "POST", "/merge_requests/3/discussions", 400, {"message": INVALID_POSITION}
    )
    env = job_env(fake_gitlab, gateway, project, 3)
    result = await review(env, "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    assert len(mr.diff_discussions) == 3
    (summary,) = [note for note in mr.notes if note.type is None]
    # The critical finding is posted first; GitLab refused it, so the summary lists it.
    assert "`app/users.py` line 8: SQL built by concatenating user input" in summary.body
    assert "3 as threads on the diff. 2 listed below." in summary.body


async def test_the_diff_from_the_jobs_git_checkout(
    fake_gitlab: RunningFakeGitLab, gateway: Gateway, tmp_path: Path
) -> None:
    repo = tmp_path / "checkout"
    repo.mkdir()

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "user.email", "dev@example.com")
    git("config", "user.name", "Dev")
    (repo / "app").mkdir()
    before = 'import sqlite3\n\n\ndef get_user(db, user_id):\n    return db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()\n'
    (repo / "app/users.py").write_text(before)
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    base = git("rev-parse", "HEAD")
    (repo / "app/users.py").write_text(
        before
        + "\ndef search_users(db, name):\n"
        + SQL_LINE
        + "\n    return db.execute(query).fetchall()\n"
    )
    (repo / "app/math.py").write_text("def ratio(a, b):\n    return a / b\n\n")
    git("add", "-A")
    git("commit", "-q", "-m", "search")
    head = git("rev-parse", "HEAD")
    # GitLab's view of the same MR (what the fake validates positions against).
    files = parse_git_diff(git("diff", f"{base}...{head}"))
    diffs = [
        {
            "old_path": f.old_path,
            "new_path": f.new_path,
            "new_file": f.new_file,
            "diff": "".join(hunk.text() for hunk in f.hunks),
        }
        for f in files
    ]
    project, mr = seed(fake_gitlab, iid=4, diffs=diffs, base=base, start=base, head=head)
    env = job_env(fake_gitlab, gateway, project, 4, CI_MERGE_REQUEST_DIFF_BASE_SHA=base)
    result = await review(env, "--repo", str(repo), "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    assert not fake_gitlab.state.find_calls("GET", "/merge_requests/4/diffs")  # read from git
    assert set(by_location(mr)) == {
        ("app/users.py", 8),
        ("app/users.py", 4),
        ("app/math.py", 2),
        ("app/math.py", 1),
    }

    # A checkout at another commit than the MR's head: GitLab's diff is reviewed instead.
    fake_gitlab.state.calls.clear()
    seed(fake_gitlab, iid=5, diffs=diffs, base=base, start=base, head="e" * 40)
    env = job_env(fake_gitlab, gateway, project, 5, CI_MERGE_REQUEST_DIFF_BASE_SHA=base)
    result = await review(
        env, "--repo", str(repo), "--dry-run", "--report", str(tmp_path / "r.json")
    )
    assert result.exit_code == 0, result.output
    assert "reviewing GitLab's diff of the merge request instead" in result.output
    assert fake_gitlab.state.find_calls("GET", "/merge_requests/5/diffs")


async def test_settings_that_cannot_work_are_explained(
    fake_gitlab: RunningFakeGitLab, gateway: Gateway, tmp_path: Path
) -> None:
    project, mr = seed(fake_gitlab, iid=6)
    report = str(tmp_path / "r.json")
    # Only a job token: it cannot write notes, the command says so and posts nothing.
    env = job_env(
        fake_gitlab, gateway, project, 6, GITLAB_TOKEN=None, CI_JOB_TOKEN="job-token-secret-123"
    )
    result = await review(env, "--report", report)
    assert result.exit_code == 2
    assert "CI_JOB_TOKEN cannot write merge request notes" in result.output
    assert "job-token-secret-123" not in result.output
    # A read-only token: GitLab refuses the writes; the report is written all the same.
    fake_gitlab.state.set_token("glpat-read-only-0123", scopes=("read_api",))
    env = job_env(fake_gitlab, gateway, project, 6, GITLAB_TOKEN="glpat-read-only-0123")
    result = await review(env, "--report", report)
    assert result.exit_code == 2
    assert "HTTP 403" in result.output
    assert "api scope" in result.output
    assert "glpat-read-only-0123" not in result.output
    assert len(read_report(report)) == 5
    assert mr.notes == []
    # A gateway key it does not know.
    env = job_env(fake_gitlab, gateway, project, 6, LOCKGATE_API_KEY="lg-wrong-key-0123456789")
    result = await review(env, "--report", report)
    assert result.exit_code == 2
    assert "refused the credential" in result.output
    assert "lg-wrong-key-0123456789" not in result.output
    # Not in a merge request pipeline.
    env = job_env(fake_gitlab, gateway, project, 6, CI_MERGE_REQUEST_IID=None)
    result = await review(env)
    assert result.exit_code == 2
    assert "CI_MERGE_REQUEST_IID" in result.output


@pytest.fixture(scope="module")
async def posting_gateway(
    simulator: RunningSimulator, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Gateway, RunningFakeGitLab, Issuer]]:
    """A gateway that trusts a GitLab's ID tokens and posts to it with its own bot token."""
    issuer = await Issuer().start()
    fake = await start_fake_gitlab()
    fake.state.set_token(DEFAULT_TOKEN, "lockgate-bot")
    prompts = tmp_path_factory.mktemp("posting-gateway") / "prompts"
    shutil.copytree(REPO_PROMPTS / "_partials", prompts / "_partials")
    (prompts / "code-review").mkdir()
    answer = {"summary": "Adds user search and a ratio helper.", "findings": FINDINGS}
    (prompts / "code-review" / "1.0.0.yaml").write_text(review_prompt(answer))
    yaml = f"""\
providers:
  - {{name: sim, type: openai, base_url: "{simulator.base_url}", api_key: x}}
models:
  - {{name: gpt-4o-mini, targets: [{{provider: sim, model: sim-small}}]}}
prompts: {{dir: "{prompts}"}}
auth:
  oidc: [{{issuer: "{issuer.url}", audience: "{AUDIENCE}"}}]
gitlab: {{url: "{fake.url}", token: "{DEFAULT_TOKEN}"}}
"""
    try:
        async with running_gateway(config_from_yaml(yaml)) as url:
            yield Gateway(url), fake, issuer
    finally:
        await fake.close()
        await issuer.close()


async def test_via_gateway_the_gateway_posts_and_the_job_writes_the_report(
    posting_gateway: tuple[Gateway, RunningFakeGitLab, Issuer], tmp_path: Path
) -> None:
    gateway, fake, issuer = posting_gateway
    project, mr = seed(fake, iid=1)
    token = issuer.mint(issuer.claims(project_id=str(project), project_path="group/app"))
    env = job_env(fake, gateway, project, 1, GITLAB_TOKEN=None, LOCKGATE_API_KEY=None)
    env["LOCKGATE_ID_TOKEN"] = token
    report = tmp_path / "report.json"
    result = await review(env, "--via-gateway", "--fail-on", "critical", "--report", str(report))
    assert result.exit_code == 1, result.output
    assert token not in result.output
    assert "5 findings, summary note created" in result.output
    writes = [call for call in fake.state.calls if call.method in ("POST", "PUT")]
    assert {call.token for call in writes} == {DEFAULT_TOKEN}  # the gateway's bot token
    assert len(mr.diff_discussions) == 4
    issues = read_report(report)
    marked = {v for d in mr.diff_discussions for v in fingerprints_in(d.notes[0].body)}
    assert len(issues) == 5
    assert marked < {issue["fingerprint"] for issue in issues}
    # Again: the note is updated, nothing else is posted, the report is the same.
    before = report.read_text()
    result = await review(env, "--via-gateway", "--report", str(report))
    assert result.exit_code == 0, result.output
    assert "summary note updated" in result.output
    assert len(mr.diff_discussions) == 4
    assert report.read_text() == before


async def test_via_gateway_dry_run_sends_nothing(
    fake_gitlab: RunningFakeGitLab, gateway: Gateway
) -> None:
    env = job_env(
        fake_gitlab,
        gateway,
        7,
        8,
        GITLAB_TOKEN=None,
        LOCKGATE_API_KEY=None,
        LOCKGATE_ID_TOKEN="eyJ.id.token",
    )
    result = await review(env, "--via-gateway", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "/gitlab/merge-requests/review" in result.output
    assert "eyJ.id.token" not in result.output
    assert fake_gitlab.state.calls == []
    env["LOCKGATE_ID_TOKEN"] = None
    result = await review(env, "--via-gateway")
    assert result.exit_code == 2
    assert "LOCKGATE_ID_TOKEN" in result.output
