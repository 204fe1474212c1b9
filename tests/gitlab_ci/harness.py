"""Run this repository's GitLab CI/CD components for real, with gitlab-ci-local.

`scripts/ci-tools` installs Node.js 22 and gitlab-ci-local into `.tools/`. A test builds a
`CiRepo`: a temporary git repository with a copy of `templates/`, a `.gitlab-ci.yml` that
includes components, and whatever files the jobs work on; `CiRepo.run` runs one job with the
shell executor and returns its exit code and output.

What gitlab-ci-local (4.75) does with components, found by running it:

- `include: component:` works for components of the project itself: one whose project path is
  the repository's git remote (group/project) and whose ref is the checked-out commit's SHA is
  read from the working tree (`templates/<name>.yml` or `templates/<name>/template.yml`). So the
  pipeline includes `$CI_SERVER_FQDN/$CI_PROJECT_PATH/<name>@$CI_COMMIT_SHA`, the line GitLab's
  docs give for testing a component in its own project; other components would be cloned from
  the remote, which the tests never reach.
- `spec: inputs` is honoured: defaults, required inputs, the string/number/boolean/array types
  (an array input can be a job's whole `rules`), `options` and `regex` are checked, and
  `$[[ inputs.x ]]` is interpolated anywhere in the body, job names included. Interpolation
  functions (`$[[ inputs.x | expand_vars ]]`) are accepted but do nothing.
- `id_tokens` passes its JSON-schema check but mints nothing: a test passes the token it minted
  itself as a variable of the same name (`--variable LOCKGATE_ID_TOKEN=...`).
- Jobs naming an `image` run in the shell executor only with `--force-shell-executor`; the
  shell executor runs the job in the repository itself, in gitlab-ci-local's environment: the
  `PATH` given here picks the `lockgate` the job runs (this checkout's `.venv/bin/lockgate`).
- `--cwd` takes only a relative path, so gitlab-ci-local runs with the repository as its
  working directory. `CI_PROJECT_DIR` is `/builds/<group>/<project>` even in shell jobs (the
  components use relative paths), `CI_COMMIT_BEFORE_SHA` is empty and `CI_PIPELINE_SOURCE` is
  `push` unless a `--variable` sets them.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

__all__ = [
    "GITLAB_CI_LOCAL",
    "LOCKGATE",
    "PROJECT_PATH",
    "REPO_ROOT",
    "TEMPLATES",
    "CiRepo",
    "JobResult",
    "component",
    "require_tools",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = REPO_ROOT / "templates"
TOOLS = REPO_ROOT / ".tools"
GITLAB_CI_LOCAL = TOOLS / "bin" / "gitlab-ci-local"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
LOCKGATE = VENV_BIN / "lockgate"

SERVER_URL = "https://gitlab.example.com"
PROJECT_PATH = "platform/gateway-config"
RUN_TIMEOUT_S = 90.0
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def require_tools() -> None:
    """Fail (never skip) when a tool the job runs need is missing, saying how to get it."""
    if not os.access(GITLAB_CI_LOCAL, os.X_OK):
        pytest.fail(
            f"gitlab-ci-local is not installed ({GITLAB_CI_LOCAL} is missing): "
            "run scripts/ci-tools once (it installs Node.js 22 and gitlab-ci-local into .tools/)",
            pytrace=False,
        )
    if not os.access(LOCKGATE, os.X_OK):
        pytest.fail(f"{LOCKGATE} is missing: run scripts/setup", pytrace=False)
    for tool in ("git", "rsync", "bash", "curl"):
        if shutil.which(tool) is None:
            pytest.fail(f"the component tests need {tool} on PATH", pytrace=False)


def component(name: str, **inputs: Any) -> dict[str, Any]:
    """An `include:` entry of this project's component `name` at the commit being run."""
    entry: dict[str, Any] = {"component": f"$CI_SERVER_FQDN/$CI_PROJECT_PATH/{name}@$CI_COMMIT_SHA"}
    if inputs:
        entry["inputs"] = inputs
    return entry


@dataclass(frozen=True)
class JobResult:
    job: str
    returncode: int
    output: str
    """gitlab-ci-local's stdout and stderr, colours removed: the job's log and its verdict."""

    @property
    def exit_code(self) -> int:
        """The job script's exit code, from the log's `<job> finished in ... FAIL <code>` line,
        or `WARN <code>` for a failure `allow_failure` allows (gitlab-ci-local itself then exits
        0); gitlab-ci-local's own code when the job never finished."""
        finished = re.search(
            rf"^{re.escape(self.job)} finished in [^\n]*?(?:(?:FAIL|WARN) (\d+))?\s*$",
            self.output,
            re.MULTILINE,
        )
        if finished is None:
            return self.returncode if self.returncode != 0 else -1
        return int(finished.group(1) or 0)

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and self.exit_code == 0

    def __str__(self) -> str:
        return f"job {self.job} exited {self.returncode}:\n{self.output}"


class CiRepo:
    """A throwaway GitLab project: a git repository whose remote is `PROJECT_PATH` on
    `SERVER_URL` (never contacted), holding a copy of this checkout's `templates/`."""

    def __init__(self, path: Path, *, server_url: str = SERVER_URL) -> None:
        require_tools()
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self.home = path.parent / f"{path.name}-gcl-home"  # gitlab-ci-local's HOME settings
        self.home.mkdir(exist_ok=True)
        self.git("init", "--quiet", "--initial-branch=main")
        self.git("config", "user.name", "CI Test")
        self.git("config", "user.email", "ci-test@example.com")
        self.git("config", "commit.gpgsign", "false")
        self.git("remote", "add", "origin", f"{server_url}/{PROJECT_PATH}.git")
        shutil.copytree(TEMPLATES, self.path / "templates")
        self.write({".gitignore": ".gitlab-ci-local/\n"})

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def write(self, files: Mapping[str, str]) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def pipeline(
        self, *includes: Mapping[str, Any], extra: Mapping[str, Any] | None = None
    ) -> None:
        """Write `.gitlab-ci.yml`: the includes (see `component`) and any other top-level keys."""
        document: dict[str, Any] = {"include": [dict(entry) for entry in includes]}
        document.update(extra or {})
        out = StringIO()
        yaml = YAML()
        yaml.default_flow_style = False
        yaml.dump(document, out)
        self.write({".gitlab-ci.yml": out.getvalue()})

    def commit(self, message: str = "Update the gateway config") -> str:
        """Commit everything; the new HEAD's SHA."""
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "--message", message)
        # What a clone has: origin/HEAD -> origin/main (gitlab-ci-local reads the default branch).
        self.git("update-ref", "refs/remotes/origin/main", "HEAD")
        self.git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
        return self.git("rev-parse", "HEAD")

    def command(
        self, *args: str, variables: Mapping[str, str] | None = None, unset: Sequence[str] = ()
    ) -> list[str]:
        argv = [
            str(GITLAB_CI_LOCAL),
            *args,
            "--force-shell-executor",
            "--home",
            str(self.home),
            "--max-job-name-padding",
            "0",
        ]
        for name, value in (variables or {}).items():
            argv += ["--variable", f"{name}={value}"]
        for name in unset:
            argv += ["--unset-variable", name]
        return argv

    def environment(self) -> dict[str, str]:
        """The caller's environment without CI or gitlab-ci-local settings, this checkout's
        virtualenv first on PATH."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("CI_", "GITLAB_", "GCL_", "LOCKGATE_", "FORCE_COLOR"))
        }
        env["PATH"] = os.pathsep.join([str(VENV_BIN), str(TOOLS / "bin"), env.get("PATH", "")])
        env["NO_COLOR"] = "1"
        env.pop("CI", None)
        env.pop("VIRTUAL_ENV", None)
        return env

    def run(self, job: str, variables: Mapping[str, str] | None = None) -> JobResult:
        """Run one job (not the jobs it needs) with the shell executor. gitlab-ci-local runs
        a job named here even when its rules say `never` (see `list_jobs` for the rules). The
        JSON-schema check (a second per run) is left to `list_jobs`."""
        return self._gitlab_ci_local(job, [job, "--no-json-schema-validation"], variables)

    def list_jobs(
        self, variables: Mapping[str, str] | None = None, unset: Sequence[str] = ()
    ) -> JobResult:
        """`--list-all`: every job of the pipeline with its `when`, after includes, inputs and
        the JSON-schema check (`unset`: predefined variables to take away)."""
        return self._gitlab_ci_local("--list-all", ["--list-all"], variables, unset)

    async def run_async(self, job: str, variables: Mapping[str, str] | None = None) -> JobResult:
        """`run` in a worker thread, for tests whose gateway serves from this event loop."""
        return await asyncio.to_thread(self.run, job, variables)

    def _gitlab_ci_local(
        self,
        name: str,
        args: Sequence[str],
        variables: Mapping[str, str] | None,
        unset: Sequence[str] = (),
    ) -> JobResult:
        done = subprocess.run(
            self.command(*args, variables=variables, unset=unset),
            cwd=self.path,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        return JobResult(name, done.returncode, ANSI.sub("", done.stdout))
