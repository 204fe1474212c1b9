"""The `test-generation` and `docs-update` components' jobs, and the example application
pipeline (examples/gitlab/.gitlab-ci.yml), run for real by gitlab-ci-local (shell executor)
against a gateway started here: only GitLab CI ID tokens of a test issuer get in, and the
simulator gives each prompt a scripted answer. `--open-mr` commits to the fake GitLab.
See harness.py for what gitlab-ci-local supports and test_components.py for the other jobs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import orjson
import pytest
from ruamel.yaml import YAML

from lockgate.simulate.server import RunningSimulator
from tests.auth.issuer import AUDIENCE, Issuer
from tests.conftest import config_from_yaml, running_gateway
from tests.gitlab.fake_gitlab import DEFAULT_TOKEN, RunningFakeGitLab, fake_gitlab
from tests.gitlab_ci.harness import PROJECT_PATH, REPO_ROOT, CiRepo, JobResult, component
from tests.gitlab_ci.test_components import (
    GATEWAY_INPUTS,
    NO_INSTALL,
    USERS_DIFF,
    issuer,
    merge_request_variables,
    oidc_gateway_yaml,
)

__all__ = ["fake_gitlab", "issuer"]  # the fixtures, imported for pytest

CALC = "def add(a, b):\n    return a + b\n"
CALC_WITH_SUB = CALC + "\n\ndef sub(a, b):\n    return a - b\n"
DOC = "# Calc\n\nThe calc module adds numbers.\n"
SOURCE_BRANCH = "feature/sub"
MR_IID = 4

TEST_FILE = "from app.calc import sub\n\n\ndef test_sub_subtracts():\n    assert sub(5, 3) == 2\n"
DOC_PATCH = (
    "--- a/docs/x.md\n+++ b/docs/x.md\n@@ -1,3 +1,5 @@\n # Calc\n \n"
    " The calc module adds numbers.\n+\n+`sub(a, b)` returns a minus b.\n"
)
DOCUMENTED = DOC + "\n`sub(a, b)` returns a minus b.\n"
# Scripted answers: the prompt name the gateway serves -> (this repository's prompt it copies,
# what the simulated model answers).
ANSWERS: dict[str, tuple[str, Any]] = {
    "test-generation": (
        "test-generation",
        {"files": [{"path": "tests/test_calc.py", "content": TEST_FILE}], "notes": "sub only"},
    ),
    "docs-update": ("docs-update", {"patch": DOC_PATCH, "summary": "Documents sub()."}),
    # Its context says "multiplies": it does not apply to docs/x.md.
    "docs-stale": (
        "docs-update",
        {"patch": DOC_PATCH.replace("adds numbers", "multiplies"), "summary": "Stale."},
    ),
    "code-review": (
        "code-review",
        {
            "summary": "Adds a user search.",
            "findings": [
                {
                    "file": "app/users.py",
                    "line": 5,
                    "severity": "major",
                    "message": "SQL built by concatenating user input: injection.",
                }
            ],
        },
    ),
}


def scripted_prompts(directory: Path) -> Path:
    """A prompts directory with each of `ANSWERS`: this repository's prompt (latest version),
    on the gateway's model `chat`, whose answer the simulator is scripted to give."""
    shutil.copytree(REPO_ROOT / "prompts" / "_partials", directory / "_partials")
    for name, (source, answer) in ANSWERS.items():
        latest = max((REPO_ROOT / "prompts" / source).glob("[0-9]*.yaml"))
        version = YAML(typ="safe").load(latest.read_text())
        version["model"] = "chat"
        version["params"]["simulate"] = {"content": orjson.dumps(answer).decode()}
        (directory / name).mkdir()
        (directory / name / latest.name).write_bytes(orjson.dumps(version))
    return directory


@pytest.fixture
async def gateway_url(
    tmp_path: Path, simulator: RunningSimulator, issuer: Issuer
) -> AsyncIterator[str]:
    """A gateway serving `ANSWERS` to GitLab CI ID tokens of `issuer` only."""
    prompts = scripted_prompts(tmp_path / "prompts")
    async with running_gateway(
        config_from_yaml(oidc_gateway_yaml(simulator, issuer, prompts))
    ) as url:
        yield url


@dataclass
class Change:
    """An application repository whose last commit (the merge request's) adds `sub` to
    app/calc.py; docs/x.md, which mentions the calc module, was there before."""

    repo: CiRepo
    base: str
    head: str

    def variables(self, fake: RunningFakeGitLab, project: int, issuer: Issuer) -> dict[str, str]:
        """What GitLab gives the job in the merge request's pipeline, and the job's ID token
        (gitlab-ci-local mints none), and `GITLAB_TOKEN` as a CI/CD variable."""
        return {
            **merge_request_variables(fake, project, MR_IID),
            "CI_MERGE_REQUEST_DIFF_BASE_SHA": self.base,
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": SOURCE_BRANCH,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_DESCRIPTION": "Adds sub() next to add().",
            "GITLAB_TOKEN": DEFAULT_TOKEN,
            "LOCKGATE_ID_TOKEN": issuer.mint(issuer.claims(project_path=PROJECT_PATH)),
        }

    def untouched(self) -> bool:
        """Nothing written, changed or committed in the job's checkout."""
        status = self.repo.git("status", "--porcelain", "--untracked-files=all")
        return status == "" and self.repo.git("rev-parse", "HEAD") == self.head


def change(path: Path, *includes: Mapping[str, Any]) -> Change:
    repo = CiRepo(path)
    repo.pipeline(*includes)
    repo.write({"app/calc.py": CALC, "docs/x.md": DOC})
    base = repo.commit("Start the calc module")
    repo.write({"app/calc.py": CALC_WITH_SUB})
    head = repo.commit("Add sub")
    return Change(repo, base, head)


def gitlab_project(fake: RunningFakeGitLab) -> int:
    """The project on the fake GitLab, with the merge request from `SOURCE_BRANCH`."""
    project = fake.state.add_project(PROJECT_PATH, files={"app/calc.py": CALC, "docs/x.md": DOC})
    fake.state.add_merge_request(project, MR_IID, title="Add sub", source_branch=SOURCE_BRANCH)
    return project


def component_inputs(**inputs: Any) -> dict[str, Any]:
    return {**GATEWAY_INPUTS, **inputs}


# -- test-generation --------------------------------------------------------------------------


async def test_test_generation_dry_run_prints_the_tests_and_writes_nothing(
    tmp_path: Path, gateway_url: str, fake_gitlab: RunningFakeGitLab, issuer: Issuer
) -> None:
    project = gitlab_project(fake_gitlab)
    job = change(
        tmp_path / "repo",
        component("test-generation", **component_inputs(gateway_url=gateway_url, dry_run=True)),
    )
    result = await job.repo.run_async(
        "test-generation", job.variables(fake_gitlab, project, issuer)
    )

    assert (result.returncode, result.exit_code) == (0, 0), result
    assert "lockgate ci testgen --prompt test-generation --dry-run" in result.output
    assert "would write tests/test_calc.py" in result.output
    for line in TEST_FILE.strip().splitlines():
        assert line in result.output
    assert job.untouched(), job.repo.git("status", "--porcelain", "--untracked-files=all")
    assert fake_gitlab.state.calls == []


async def test_test_generation_opens_a_merge_request_with_the_tests(
    tmp_path: Path, gateway_url: str, fake_gitlab: RunningFakeGitLab, issuer: Issuer
) -> None:
    project = gitlab_project(fake_gitlab)
    job = change(
        tmp_path / "repo",
        component("test-generation", **component_inputs(gateway_url=gateway_url, open_mr=True)),
    )
    result = await job.repo.run_async(
        "test-generation", job.variables(fake_gitlab, project, issuer)
    )

    assert (result.returncode, result.exit_code) == (0, 0), result
    assert "lockgate ci testgen --prompt test-generation --open-mr" in result.output
    assert "Wrote 1 test file for app/calc.py" in result.output
    branch = f"lockgate/testgen-{job.head[:8]}"
    gitlab = fake_gitlab.state.project(project)
    (commit,) = gitlab.created_commits
    assert (commit["branch"], commit["start_branch"]) == (branch, SOURCE_BRANCH)
    assert [(a["action"], a["file_path"]) for a in commit["actions"]] == [
        ("create", "tests/test_calc.py")
    ]
    assert gitlab.branches[branch].files["tests/test_calc.py"] == TEST_FILE
    assert gitlab.branches[branch].files["app/calc.py"] == CALC  # the rest as on the MR branch
    (opened,) = fake_gitlab.state.created_merge_requests(project)
    assert (opened.source_branch, opened.target_branch) == (branch, SOURCE_BRANCH)
    assert opened.title == "Tests for the latest changes"
    assert f"Opened {fake_gitlab.url}/{PROJECT_PATH}/-/merge_requests/{opened.iid}" in (
        result.output
    )
    assert {call.token for call in fake_gitlab.state.calls} == {DEFAULT_TOKEN}


# -- docs-update ------------------------------------------------------------------------------


async def test_docs_update_commits_the_patch_and_fails_on_one_that_does_not_apply(
    tmp_path: Path, gateway_url: str, fake_gitlab: RunningFakeGitLab, issuer: Issuer
) -> None:
    project = gitlab_project(fake_gitlab)
    inputs = component_inputs(gateway_url=gateway_url, open_mr=True)
    job = change(
        tmp_path / "repo",
        component("docs-update", **inputs),
        component("docs-update", **inputs, job_name="docs-update-stale", prompt="docs-stale"),
    )
    variables = job.variables(fake_gitlab, project, issuer)

    stale = await job.repo.run_async("docs-update-stale", variables)
    assert stale.exit_code == 2, stale
    assert "lockgate ci docs --prompt docs-stale --open-mr" in stale.output
    assert "the proposed patch does not apply" in stale.output
    assert job.untouched()
    assert fake_gitlab.state.find_calls("POST") == []

    result = await job.repo.run_async("docs-update", variables)
    assert (result.returncode, result.exit_code) == (0, 0), result
    assert "Documents sub()." in result.output
    assert "Updated docs/x.md" in result.output
    assert (job.repo.path / "docs" / "x.md").read_text() == DOCUMENTED
    branch = f"lockgate/docs-{job.head[:8]}"
    gitlab = fake_gitlab.state.project(project)
    (commit,) = gitlab.created_commits
    assert (commit["branch"], commit["start_branch"]) == (branch, SOURCE_BRANCH)
    assert [(a["action"], a["file_path"]) for a in commit["actions"]] == [("update", "docs/x.md")]
    assert gitlab.branches[branch].files["docs/x.md"] == DOCUMENTED
    (opened,) = fake_gitlab.state.created_merge_requests(project)
    assert (opened.source_branch, opened.target_branch) == (branch, SOURCE_BRANCH)
    assert (opened.title, opened.description) == ("Docs for the latest changes", "Documents sub().")
    assert "Opened " in result.output


# -- the example application pipeline ---------------------------------------------------------

EXAMPLE = REPO_ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"
RELEASED = re.compile(r"^\$CI_SERVER_FQDN/platform/lockgate/(?P<name>[a-z-]+)@(?P<ref>.+)$")
MR_RULES = [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
MANUAL_MR_RULES = [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "when": "manual"}]


def example_repo(path: Path) -> CiRepo:
    """The example pipeline in a project of its own, its components this checkout's: each
    `platform/lockgate/<name>@1.0.0` becomes the harness's local form (see `component`), with
    `lockgate_install` set so the jobs run this checkout's lockgate (not one from PyPI). The
    stages, the other inputs and the `unit-tests` job are kept as they are."""
    yaml = YAML()
    document = yaml.load(EXAMPLE.read_text())
    names = []
    for entry in document["include"]:
        released = RELEASED.match(entry["component"])
        assert released, entry["component"]
        assert released["ref"] == "1.0.0"  # pinned to a release, as its comment advises
        names.append(released["name"])
        local = component(released["name"], **entry["inputs"], lockgate_install=NO_INSTALL)
        entry["component"] = local["component"]
        entry["inputs"] = local["inputs"]
    assert names == ["ai-review", "commit-sentiment", "test-generation", "docs-update"]
    out = StringIO()
    yaml.dump(document, out)
    repo = CiRepo(path)
    repo.write({".gitlab-ci.yml": out.getvalue()})
    return repo


def listing(result: JobResult) -> dict[str, tuple[str, str, str]]:
    """`--list-all` rows (no job has a description): name -> (stage, when, allow_failure)."""
    rows = {}
    for line in result.output.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] in ("on_success", "manual", "never", "always"):
            rows[fields[0]] = (fields[1], fields[2], fields[3])
    return rows


def preview(repo: CiRepo) -> dict[str, Any]:
    """The pipeline as gitlab-ci-local expands it (`--preview`): includes, inputs, defaults."""
    done = subprocess.run(
        repo.command("--preview"),
        cwd=repo.path,
        env=repo.environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document: dict[str, Any] = YAML(typ="safe").load(done.stdout)
    return document


def test_the_example_pipeline_runs_each_job_in_the_right_pipelines(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    repo.commit("Add the pipeline")

    merge_request = repo.list_jobs(
        {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7"},
        unset=("CI_COMMIT_BRANCH",),
    )
    assert merge_request.returncode == 0, merge_request
    assert "json schema validated" in merge_request.output
    assert listing(merge_request) == {
        "ai-review": ("test", "on_success", "false"),
        "commit-sentiment": ("test", "on_success", "true"),  # a warning, not a red MR
        "test-generation": ("test", "manual", "true"),
        "docs-update": ("test", "manual", "true"),
        "unit-tests": ("test", "on_success", "false"),
    }
    push = repo.list_jobs()
    assert push.returncode == 0, push
    assert listing(push) == {
        "ai-review": ("test", "never", "false"),
        "commit-sentiment": ("test", "never", "true"),
        "test-generation": ("test", "never", "true"),
        "docs-update": ("test", "never", "true"),
        "unit-tests": ("test", "on_success", "false"),
    }

    jobs = preview(repo)
    assert jobs["stages"] == [".pre", "build", "test", "deploy", ".post"]
    expected_rules = {
        "ai-review": MR_RULES,
        "commit-sentiment": MR_RULES,
        "test-generation": MANUAL_MR_RULES,
        "docs-update": MANUAL_MR_RULES,
    }
    for name, rules in expected_rules.items():
        job = jobs[name]
        assert job["rules"] == rules, name
        assert job["variables"]["LOCKGATE_URL"] == "https://lockgate.example.com", name
        assert job["id_tokens"] == {"LOCKGATE_ID_TOKEN": {"aud": AUDIENCE}}, name
    assert "rules" not in jobs["unit-tests"]
    scripts = {name: "\n".join(jobs[name]["script"]) for name in expected_rules}
    assert '[ "critical" != none ]' in scripts["ai-review"]
    assert "--min-score -0.5" in scripts["commit-sentiment"]
    assert '[ "true" = true ]; then set -- "$@" --open-mr' in scripts["test-generation"]
    assert '[ "true" = true ]; then set -- "$@" --dry-run' in scripts["docs-update"]


async def test_the_example_pipelines_ai_review_reviews_the_merge_request(
    tmp_path: Path, gateway_url: str, fake_gitlab: RunningFakeGitLab, issuer: Issuer
) -> None:
    project = fake_gitlab.state.add_project(PROJECT_PATH)
    diffs = [{"old_path": "app/users.py", "new_path": "app/users.py", "diff": USERS_DIFF}]
    mr = fake_gitlab.state.add_merge_request(project, 6, title="Add user search", diffs=diffs)
    repo = example_repo(tmp_path / "repo")
    repo.commit("Add user search")
    # The example's gateway_url is its own gateway's; the job's LOCKGATE_URL comes from that
    # input, and a CI/CD variable of the same name wins over a job's variables (in GitLab as in
    # gitlab-ci-local): here it points the job at the test gateway.
    result = await repo.run_async(
        "ai-review",
        {
            **merge_request_variables(fake_gitlab, project, 6),
            "LOCKGATE_URL": gateway_url,
            "GITLAB_TOKEN": DEFAULT_TOKEN,
            "LOCKGATE_ID_TOKEN": issuer.mint(issuer.claims(project_path=PROJECT_PATH)),
        },
    )

    assert result.passed, result  # a major finding; the example fails the job on critical ones
    assert "lockgate ci review --prompt code-review --fail-on critical" in result.output
    (summary,) = [note for note in mr.notes if note.type is None]
    assert "Adds a user search." in summary.body
    (thread,) = mr.diff_discussions
    assert thread.position is not None
    assert thread.position["new_line"] == 5
    report = orjson.loads((repo.path / "gl-code-quality-report.json").read_bytes())
    assert [(issue["severity"], issue["location"]["path"]) for issue in report] == [
        ("major", "app/users.py")
    ]
