"""`lockgate ci sentiment|testgen|docs` end to end: a real git checkout, a real gateway whose
prompts' answers are scripted through the simulator, and the fake GitLab for `--open-mr`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from lockgate.cli.main import app
from lockgate.simulate.server import RunningSimulator
from tests.conftest import config_from_yaml, running_gateway
from tests.gitlab.fake_gitlab import DEFAULT_TOKEN, RunningFakeGitLab, start_fake_gitlab

CALC = "def add(a, b):\n    return a + b\n"
DOC = "# Calc\n\nThe calc module adds numbers.\n"
DOC_PATCH = (
    "--- a/docs/calc.md\n+++ b/docs/calc.md\n@@ -1,3 +1,5 @@\n # Calc\n \n"
    " The calc module adds numbers.\n+\n+`add(a, b)` returns their sum.\n"
)
ANSWERS: dict[str, Any] = {
    "mood": {"score": 0.6, "label": "positive"},
    "tg": {"files": [{"path": "tests/test_calc.py", "content": "def test_add():\n    pass\n"}]},
    "tg-escape": {"files": [{"path": "../outside.py", "content": "x = 1\n"}]},
    "tg-overwrite": {"files": [{"path": "app/calc.py", "content": "broken\n"}]},
    "doc": {"patch": DOC_PATCH, "summary": "Documents add()."},
    "doc-stale": {"patch": DOC_PATCH.replace("adds numbers", "multiplies"), "summary": "x"},
}


def prompt_file(answer: Any) -> str:
    content = json.dumps(json.dumps(answer))
    return f"""model: m
params: {{simulate: {{content: {content}}}}}
messages: [{{role: user, content: "{{{{ text | default('') }}}}"}}]
input: {{type: object}}
output: {{type: object}}
"""


@dataclass
class Setup:
    url: str
    fake: RunningFakeGitLab
    project_id: int


@pytest.fixture(scope="module")
async def setup(
    simulator: RunningSimulator, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Setup]:
    prompts = tmp_path_factory.mktemp("jobs") / "prompts"
    for name, answer in ANSWERS.items():
        (prompts / name).mkdir(parents=True)
        (prompts / name / "1.0.0.yaml").write_text(prompt_file(answer))
    fake = await start_fake_gitlab()
    fake.state.set_token(DEFAULT_TOKEN, "lockgate-bot")
    project_id = fake.state.add_project("group/app", files={"app/calc.py": CALC})
    yaml = f"""
providers: [{{name: sim, type: openai, base_url: "{simulator.base_url}", api_key: x}}]
models: [{{name: m, targets: [{{provider: sim, model: sim-small}}]}}]
prompts: {{dir: "{prompts}"}}
"""
    try:
        async with running_gateway(config_from_yaml(yaml)) as url:
            yield Setup(url, fake, project_id)
    finally:
        await fake.close()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Dev", "-c", "user.email=dev@x.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout whose last commit adds app/calc.py; docs/calc.md was there before."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "calc.md").write_text(DOC)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "Start the docs")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "calc.py").write_text(CALC)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "Add the calc module\n\nIt adds two numbers.")
    return tmp_path


async def run(setup: Setup, repo: Path, *args: str, **env: str | None) -> Result:
    base: dict[str, str | None] = {
        "LOCKGATE_URL": setup.url,
        "LOCKGATE_API_KEY": None,
        "LOCKGATE_ID_TOKEN": None,
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": None,
        "CI_COMMIT_BEFORE_SHA": None,
        "CI_COMMIT_SHA": git(repo, "rev-parse", "HEAD"),
        "CI_SERVER_URL": setup.fake.url,
        "CI_PROJECT_ID": str(setup.project_id),
        "CI_COMMIT_REF_NAME": "main",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": None,
        "CI_MERGE_REQUEST_DESCRIPTION": None,
        "GITLAB_TOKEN": DEFAULT_TOKEN,
    }
    base.update(env)
    return await asyncio.to_thread(
        CliRunner().invoke, app, ["ci", *args, "--repo", str(repo)], env=base
    )


async def test_sentiment_rates_each_commit_and_gates(setup: Setup, repo: Path) -> None:
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    env = {"CI_COMMIT_BEFORE_SHA": first}
    passed = await run(setup, repo, "sentiment", "--prompt", "mood", "--min-score", "0.5", **env)
    assert passed.exit_code == 0, passed.output
    assert "+0.60" in passed.output
    assert "positive" in passed.output
    assert "Add the calc module" in passed.output
    gated = await run(setup, repo, "sentiment", "--prompt", "mood", "--min-score", "0.7", **env)
    assert gated.exit_code == 1
    assert "1 commit scored below +0.70" in gated.output
    dry = await run(setup, repo, "sentiment", "--dry-run", LOCKGATE_URL=None, **env)
    assert dry.exit_code == 0
    assert "would rate" in dry.output


async def test_testgen_writes_tests_and_opens_a_merge_request(setup: Setup, repo: Path) -> None:
    dry = await run(setup, repo, "testgen", "--prompt", "tg", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would write tests/test_calc.py" in dry.output
    assert not (repo / "tests").exists()

    done = await run(setup, repo, "testgen", "--prompt", "tg", "--open-mr")
    assert done.exit_code == 0, done.output
    assert (repo / "tests" / "test_calc.py").read_text().startswith("def test_add")
    [created] = setup.fake.state.created_merge_requests(setup.project_id)
    assert created.source_branch.startswith("lockgate/testgen-")
    assert created.target_branch == "main"
    assert "Opened" in done.output


async def test_testgen_never_writes_outside_tests(setup: Setup, repo: Path) -> None:
    escape = await run(setup, repo, "testgen", "--prompt", "tg-escape")
    assert escape.exit_code == 2
    assert "outside the repository" in escape.output
    assert not (repo.parent / "outside.py").exists()
    overwrite = await run(setup, repo, "testgen", "--prompt", "tg-overwrite")
    assert overwrite.exit_code == 2
    assert "not a test file" in overwrite.output
    assert (repo / "app" / "calc.py").read_text() == CALC


async def test_docs_applies_the_patch_and_refuses_one_that_does_not_fit(
    setup: Setup, repo: Path
) -> None:
    dry = await run(setup, repo, "docs", "--prompt", "doc", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would apply" in dry.output
    assert (repo / "docs" / "calc.md").read_text() == DOC

    done = await run(setup, repo, "docs", "--prompt", "doc")
    assert done.exit_code == 0, done.output
    assert "`add(a, b)` returns their sum." in (repo / "docs" / "calc.md").read_text()
    assert "Documents add()." in done.output

    git(repo, "checkout", "--", "docs/calc.md")
    stale = await run(setup, repo, "docs", "--prompt", "doc-stale")
    assert stale.exit_code == 2
    assert "does not apply" in stale.output
    assert (repo / "docs" / "calc.md").read_text() == DOC
