"""`lockgate ci sentiment|testgen|docs`: the other GitLab CI jobs (`ci review` is in `ci.py`).

Each reads GitLab's predefined variables for what the pipeline is about and calls one of the
gateway's prompt APIs (`LOCKGATE_URL` with `LOCKGATE_API_KEY` or the job's ID token
`LOCKGATE_ID_TOKEN`). `--dry-run` prints what the job would do and changes nothing. Exit codes:
0 done, 1 the gate failed (`sentiment --min-score`), 2 the job could not run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from lockgate.cli.ci import EXIT_FAILED, _console, _count, _unusable, _warn, ci_app

if TYPE_CHECKING:
    from lockgate.gitlab.diffs import FileDiff
    from lockgate.gitlab.gateway import GatewayClient

__all__ = ["docs", "sentiment", "write_tests"]

Url = Annotated[
    str | None, typer.Option("--url", envvar="LOCKGATE_URL", metavar="URL", help="The gateway.")
]
Key = Annotated[
    str | None,
    typer.Option("--key", envvar="LOCKGATE_API_KEY", metavar="KEY", show_default=False),
]
IdToken = Annotated[
    str | None,
    typer.Option("--id-token", envvar="LOCKGATE_ID_TOKEN", metavar="JWT", show_default=False),
]
Repo = Annotated[Path, typer.Option("--repo", metavar="DIR", help="The job's git checkout.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print what would be done, change nothing.")
]
OpenMr = Annotated[
    bool,
    typer.Option("--open-mr", help="Push the result to a new branch and open a merge request."),
]
BaseSha = Annotated[
    str | None,
    typer.Option(
        "--base-sha",
        envvar="CI_MERGE_REQUEST_DIFF_BASE_SHA",
        metavar="SHA",
        help="Diff from here (default: the pipeline's commits).",
    ),
]


@ci_app.command("sentiment")
def sentiment(
    url: Url = None,
    key: Key = None,
    id_token: IdToken = None,
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score", min=-1, max=1, help="Fail when a commit scores below this (-1..1)."
        ),
    ] = None,
    prompt: Annotated[str, typer.Option("--prompt", metavar="NAME[@REF]")] = "sentiment",
    revisions: Annotated[
        str | None,
        typer.Option("--range", metavar="A..B", help="Commits to rate (default: the pipeline's)."),
    ] = None,
    repo: Repo = Path(),
    dry_run: DryRun = False,
) -> None:
    """Rate the pipeline's commit messages with the sentiment prompt; gate on --min-score."""
    from lockgate.gitlab.commits import GitError, commit_range, commits_in
    from lockgate.gitlab.sentiment import below, rate

    try:
        commits = commits_in(revisions or commit_range(os.environ), repo)
    except GitError as exc:
        _unusable(str(exc))
    console = _console()
    if not commits:
        console.print("No commits to rate.")
        return
    if dry_run:
        for commit in commits:
            console.print(f"would rate {commit.sha[:8]} {Text(commit.title)}")
        return
    gateway_url = _gateway_url(url)

    async def run() -> list[Any]:
        async with _client(gateway_url, key or id_token) as gateway:
            return await rate(commits, _asker(gateway, prompt))

    rated = _call(run)
    table = Table(box=box.SIMPLE, show_edge=False)
    for header in ("COMMIT", "SCORE", "LABEL", "TITLE"):
        table.add_column(header)
    for entry in rated:
        table.add_row(entry.commit.sha[:8], f"{entry.score:+.2f}", entry.label, entry.commit.title)
    console.print(table)
    failing = below(rated, min_score)
    if failing:
        _warn(f"{_count(len(failing), 'commit')} scored below {min_score:+.2f}")
        raise typer.Exit(EXIT_FAILED)


@ci_app.command("testgen")
def write_tests(
    url: Url = None,
    key: Key = None,
    id_token: IdToken = None,
    issue: Annotated[
        int | None,
        typer.Option("--issue", metavar="IID", help="An issue to cover (default: the MR's text)."),
    ] = None,
    framework: Annotated[str | None, typer.Option("--framework", metavar="NAME")] = None,
    prompt: Annotated[str, typer.Option("--prompt", metavar="NAME[@REF]")] = "test-generation",
    base_sha: BaseSha = None,
    repo: Repo = Path(),
    open_mr: OpenMr = False,
    dry_run: DryRun = False,
) -> None:
    """Write tests for the changed code with the test-generation prompt."""
    from lockgate.gitlab.testgen import TestgenError, generate, sources_to_test, write_files

    files = _changed_files(base_sha, repo)
    sources = sources_to_test(files)
    console = _console()
    if not sources:
        console.print("No changed source files to write tests for.")
        return
    context = (
        _issue_text(issue) if issue is not None else os.environ.get("CI_MERGE_REQUEST_DESCRIPTION")
    )
    gateway_url = _gateway_url(url)

    async def run() -> list[Any]:
        async with _client(gateway_url, key or id_token) as gateway:
            return await generate(
                sources, _reader(repo), _asker(gateway, prompt), context, framework
            )

    try:
        generated = _call(run)
    except TestgenError as exc:
        _unusable(str(exc))
    if dry_run:
        for file in generated:
            console.print(Panel(Text(file.content), title=f"would write {file.path}", expand=False))
        return
    try:
        written = write_files(repo, generated)
    except TestgenError as exc:
        _unusable(str(exc))
    console.print(f"Wrote {_count(len(written), 'test file')} for {', '.join(sources)}")
    if open_mr:
        contents = {file.path: (repo / file.path).read_text() for file in generated}
        _open_mr("testgen", "Tests for the latest changes", contents, "lockgate ci testgen")


@ci_app.command("docs")
def docs(
    url: Url = None,
    key: Key = None,
    id_token: IdToken = None,
    prompt: Annotated[str, typer.Option("--prompt", metavar="NAME[@REF]")] = "docs-update",
    base_sha: BaseSha = None,
    repo: Repo = Path(),
    open_mr: OpenMr = False,
    dry_run: DryRun = False,
) -> None:
    """Update the docs for the changed code with the docs-update prompt (a patch)."""
    from lockgate.gitlab.docs_update import DocsError, apply_patch, choose_docs, code_diff, propose

    files = _changed_files(base_sha, repo)
    diff = code_diff(files)
    console = _console()
    if not diff.strip():
        console.print("No code changes to document.")
        return
    gateway_url = _gateway_url(url)

    async def run() -> Any:
        async with _client(gateway_url, key or id_token) as gateway:
            return await propose(diff, choose_docs(repo, files), _asker(gateway, prompt))

    try:
        proposal = _call(run)
    except DocsError as exc:
        _unusable(str(exc))
    console.print(proposal.summary)
    if not proposal.patch.strip():
        console.print("The docs need no change.")
        return
    if dry_run:
        console.print(Panel(Text(proposal.patch), title="would apply", expand=False))
        return
    try:
        apply_patch(repo, proposal.patch)
    except DocsError as exc:
        _unusable(str(exc))
    changed = _patched_paths(proposal.patch)
    console.print(f"Updated {', '.join(changed)}")
    if open_mr:
        contents = {path: (repo / path).read_text() for path in changed}
        _open_mr("docs", "Docs for the latest changes", contents, proposal.summary)


# -- shared ---------------------------------------------------------------------------------------


def _gateway_url(url: str | None) -> str:
    if not url:
        _unusable("no gateway: set LOCKGATE_URL or pass --url")
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("expected an http:// or https:// URL", param_hint="'--url'")
    return url


def _client(url: str, credential: str | None) -> GatewayClient:
    from lockgate.gitlab.gateway import GatewayClient

    return GatewayClient(url, credential)


def _asker(gateway: GatewayClient, prompt: str) -> Any:
    async def ask(body: Mapping[str, Any]) -> Mapping[str, Any]:
        answer = await gateway.prompt(prompt, body)
        if not isinstance(answer.body, Mapping):
            raise ValueError(f"prompt {prompt} answered something other than a JSON object")
        return answer.body

    return ask


def _call(run: Any) -> Any:
    from lockgate.gitlab.gateway import GatewayCallError

    try:
        return asyncio.run(run())
    except GatewayCallError as exc:
        _unusable(exc.message)
    except ValueError as exc:
        _unusable(str(exc))


def _changed_files(base_sha: str | None, repo: Path) -> Sequence[FileDiff]:
    from lockgate.gitlab.commits import commit_range
    from lockgate.gitlab.diffs import parse_git_diff
    from lockgate.gitlab.git_diff import GitDiffError, read_git_diff

    base = base_sha or commit_range(os.environ).partition("..")[0] or None
    if not base or base == os.environ.get("CI_COMMIT_SHA", "HEAD"):
        base = "HEAD~1"
    try:
        return parse_git_diff(read_git_diff(base, repo))
    except GitDiffError as exc:
        _unusable(f"{exc} (is the clone deep enough? GIT_DEPTH: 0 fetches the history)")


def _reader(repo: Path) -> Any:
    def read(path: str) -> str:
        return (repo / path).read_text(errors="replace")

    return read


def _patched_paths(patch: str) -> list[str]:
    paths = []
    for line in patch.splitlines():
        if line.startswith("+++ b/"):
            paths.append(line[len("+++ b/") :])
    return paths


def _gitlab_settings() -> tuple[str, str, str]:
    url, token = os.environ.get("CI_SERVER_URL"), os.environ.get("GITLAB_TOKEN")
    project = os.environ.get("CI_PROJECT_ID")
    if not url or not token or not project:
        _unusable(
            "--open-mr and --issue need CI_SERVER_URL, CI_PROJECT_ID and GITLAB_TOKEN (a project "
            "or group access token with the api scope)"
        )
    return url, token, project


def _issue_text(iid: int) -> str:
    from lockgate.gitlab.api import GitLabAPI, GitLabError

    url, token, project = _gitlab_settings()
    try:
        with GitLabAPI(url, token) as api:
            found = api.issue(project, iid)
    except GitLabError as exc:
        _unusable(str(exc))
    return f"{found.title}\n\n{found.description}"


def _open_mr(kind: str, title: str, files: Mapping[str, str], description: str) -> None:
    from lockgate.gitlab.api import GitLabAPI, GitLabError

    url, token, project = _gitlab_settings()
    target = os.environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or os.environ.get(
        "CI_COMMIT_REF_NAME", "main"
    )
    sha = os.environ.get("CI_COMMIT_SHA", "")[:8] or "latest"
    branch = f"lockgate/{kind}-{sha}"
    try:
        with GitLabAPI(url, token) as api:
            api.commit_files(project, branch, f"{title} (lockgate ci {kind})", files, target)
            mr = api.create_merge_request(project, branch, target, title, description)
    except GitLabError as exc:
        _unusable(str(exc))
    _console().print(f"Opened {mr.web_url}")
