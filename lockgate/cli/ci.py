"""`lockgate ci review`: an AI review of a merge request, for a GitLab merge-request pipeline.

The job reads GitLab's predefined variables (`CI_SERVER_URL`, `CI_PROJECT_ID`,
`CI_MERGE_REQUEST_IID`, `CI_MERGE_REQUEST_DIFF_BASE_SHA`), calls the gateway's `code-review`
prompt (`LOCKGATE_URL`, with `LOCKGATE_API_KEY` or the job's ID token `LOCKGATE_ID_TOKEN`), and
posts with `GITLAB_TOKEN`: a project or group access token with the `api` scope. `CI_JOB_TOKEN`
is not enough: GitLab does not let job tokens write notes. Without a GitLab token,
`--via-gateway` has the gateway post with its own bot token.

Exit codes: 0 done, 1 a finding at or above `--fail-on`, 2 the review could not be made (missing
settings, the gateway or GitLab refused or could not be reached). The Code Quality report is
written before anything is posted, so it survives a failure to post.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from lockgate.gitlab.quality import REPORT_FILE, SEVERITIES, QualityIssue, is_severity

if TYPE_CHECKING:  # python-gitlab and aiohttp load when a command runs
    from lockgate.gitlab.api import GitLabAPI
    from lockgate.gitlab.diffs import FileDiff
    from lockgate.gitlab.gateway import GatewayClient
    from lockgate.gitlab.quality import Severity
    from lockgate.gitlab.review import (
        ReviewFn,
        ReviewOptions,
        ReviewOutcome,
        ReviewPlan,
        ReviewRequest,
    )

__all__ = ["ci_app", "register"]

EXIT_FAILED = 1
EXIT_UNUSABLE = 2

ci_app = typer.Typer(
    help="Jobs for GitLab CI pipelines: review, commit sentiment, tests and docs by prompts.",
    no_args_is_help=True,
)


class Source(StrEnum):
    AUTO = "auto"
    GIT = "git"
    API = "api"


class FailOn(StrEnum):
    NONE = "none"
    INFO = "info"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Settings:
    """The command's options once checked: where things are and how to reach them."""

    url: str
    credential: str | None
    prompt: str
    project: str | int
    iid: int
    report: Path
    threshold: Severity | None
    dry_run: bool


@ci_app.command("review")
def review(
    url: Annotated[
        str | None,
        typer.Option("--url", envvar="LOCKGATE_URL", metavar="URL", help="The gateway."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            envvar="LOCKGATE_API_KEY",
            metavar="KEY",
            help="A gateway API key.",
            show_default=False,
        ),
    ] = None,
    id_token: Annotated[
        str | None,
        typer.Option(
            "--id-token",
            envvar="LOCKGATE_ID_TOKEN",
            metavar="JWT",
            help="The job's GitLab CI ID token (id_tokens), instead of a key.",
            show_default=False,
        ),
    ] = None,
    prompt: Annotated[
        str, typer.Option("--prompt", metavar="NAME[@REF]", help="The review prompt.")
    ] = "code-review",
    gitlab_url: Annotated[
        str | None,
        typer.Option("--gitlab-url", envvar="CI_SERVER_URL", metavar="URL", help="GitLab."),
    ] = None,
    gitlab_token: Annotated[
        str | None,
        typer.Option(
            "--gitlab-token",
            envvar="GITLAB_TOKEN",
            metavar="TOKEN",
            help="A project or group access token, scope api (CI_JOB_TOKEN cannot post notes).",
            show_default=False,
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project", envvar="CI_PROJECT_ID", metavar="ID|PATH", help="The MR's project."
        ),
    ] = None,
    mr: Annotated[
        int | None,
        typer.Option(
            "--mr", envvar="CI_MERGE_REQUEST_IID", metavar="IID", min=1, help="The MR's IID."
        ),
    ] = None,
    source: Annotated[
        Source,
        typer.Option(
            "--source",
            case_sensitive=False,
            help="Where the diff comes from; auto: git when the base SHA and a checkout exist.",
        ),
    ] = Source.AUTO,
    base_sha: Annotated[
        str | None,
        typer.Option(
            "--base-sha",
            envvar="CI_MERGE_REQUEST_DIFF_BASE_SHA",
            metavar="SHA",
            help="The MR's diff base, for the git diff.",
        ),
    ] = None,
    repo: Annotated[
        Path, typer.Option("--repo", metavar="DIR", help="The job's git checkout.")
    ] = Path(),
    max_tokens: Annotated[
        int,
        typer.Option(
            "--max-tokens", min=1000, metavar="N", help="Token budget of one model request."
        ),
    ] = 12_000,
    language: Annotated[
        str | None,
        typer.Option("--language", metavar="NAME", help="The code's language (default: guessed)."),
    ] = None,
    report: Annotated[
        Path, typer.Option("--report", metavar="PATH", help="The Code Quality report to write.")
    ] = Path(REPORT_FILE),
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on", case_sensitive=False, help="Exit 1 on a finding at least this severe."
        ),
    ] = FailOn.NONE,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print what would be posted and write the report only."),
    ] = False,
    via_gateway: Annotated[
        bool,
        typer.Option(
            "--via-gateway", help="The gateway reads the MR and posts with its own GitLab token."
        ),
    ] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=16, help="Model requests in flight.")
    ] = 4,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, metavar="S", help="Seconds per gateway call.")
    ] = 300.0,
) -> None:
    """Review a merge request with the gateway's code-review prompt and post it on GitLab.

    A summary note (updated in place on re-runs), a diff thread per finding, a Code Quality report.

    Exit 1 when a finding reaches --fail-on, 2 when the review could not be made.
    """
    from lockgate.gitlab.gateway import split_reference

    try:
        split_reference(prompt)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--prompt'") from None
    if not url:
        _unusable("no gateway: set LOCKGATE_URL or pass --url")
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("expected an http:// or https:// URL", param_hint="'--url'")
    if project is None or mr is None:
        _unusable(
            "no merge request: run in a merge request pipeline (CI_PROJECT_ID and "
            "CI_MERGE_REQUEST_IID) or pass --project and --mr"
        )
    settings = Settings(
        url=url,
        credential=key or id_token,
        prompt=prompt,
        project=int(project) if project.isdigit() else project,
        iid=mr,
        report=report,
        threshold=None if fail_on is FailOn.NONE else _severity(fail_on.value),
        dry_run=dry_run,
    )
    if via_gateway:
        _exit(asyncio.run(_via_gateway(settings, id_token or key, timeout)))
    if not gitlab_url:
        _unusable("no GitLab: set CI_SERVER_URL or pass --gitlab-url")
    api = _gitlab(gitlab_url, gitlab_token, dry_run)
    from lockgate.gitlab.review import ReviewOptions

    files, files_sha = _git_files(source, base_sha, repo)
    options = ReviewOptions(
        max_tokens=max_tokens,
        files=files,
        files_sha=files_sha,
        read_head=_head_reader(repo) if files is not None else None,
        language=language,
        prompt=prompt,
        dry_run=dry_run,
        concurrency=concurrency,
    )
    with api:
        _exit(asyncio.run(_review(api, settings, options, timeout)))


# -- the review, posted by this job ---------------------------------------------------------------


def _gitlab(url: str, token: str | None, dry_run: bool) -> GitLabAPI:
    from lockgate.gitlab.api import GitLabAPI

    if token:
        return GitLabAPI(url, token)
    job_token = os.environ.get("CI_JOB_TOKEN")
    if not dry_run:
        _unusable(
            "no GitLab token to post with: set GITLAB_TOKEN to a project or group access token "
            "with the api scope (CI_JOB_TOKEN cannot write merge request notes), or use "
            "--via-gateway to have the gateway post, or --dry-run"
        )
    # A dry run only reads: the job token may be enough (or nothing, on a public project).
    return GitLabAPI(url, job_token=job_token) if job_token else GitLabAPI(url)


def _git_files(
    source: Source, base_sha: str | None, repo: Path
) -> tuple[list[FileDiff] | None, str | None]:
    """The diff from the checkout, and the commit it is at; (None, None) to use GitLab's."""
    from lockgate.gitlab.diffs import parse_git_diff
    from lockgate.gitlab.git_diff import GitDiffError, git_head, read_git_diff

    if source is Source.API or (source is Source.AUTO and not base_sha):
        return None, None
    if not base_sha:
        raise typer.BadParameter(
            "--source git needs CI_MERGE_REQUEST_DIFF_BASE_SHA or --base-sha",
            param_hint="'--source'",
        )
    try:
        head = git_head(repo)
        files = parse_git_diff(read_git_diff(base_sha, repo))
    except GitDiffError as exc:
        if source is Source.GIT:
            _unusable(f"{exc} (is the clone deep enough? GIT_DEPTH: 0 fetches the base)")
        _warn(f"{exc}; reading the diff from GitLab instead")
        return None, None
    return files, head


def _head_reader(repo: Path) -> Callable[[str], str | None]:
    from lockgate.gitlab.git_diff import read_head_from

    return read_head_from(repo)


async def _review(
    api: GitLabAPI, settings: Settings, options: ReviewOptions, timeout_s: float
) -> int:
    from lockgate.gitlab.api import GitLabError
    from lockgate.gitlab.gateway import GatewayCallError, GatewayClient
    from lockgate.gitlab.quality import write_report
    from lockgate.gitlab.review import ReviewError, post_review, prepare_review

    console = _console()
    async with GatewayClient(settings.url, settings.credential, timeout_s=timeout_s) as gateway:
        try:
            plan = await prepare_review(
                api, settings.project, settings.iid, _asker(gateway, settings.prompt), options
            )
        except (GitLabError, GatewayCallError, ReviewError) as exc:
            _unusable(_explain(exc))
    for warning in plan.warnings:
        _warn(warning)
    _print_plan(console, plan, settings)
    try:
        write_report(settings.report, plan.quality_issues())
    except OSError as exc:
        _unusable(f"cannot write the Code Quality report {settings.report}: {exc.strerror}")
    try:
        outcome = await post_review(api, plan, options)
    except GitLabError as exc:
        _unusable(_explain(exc))
    _print_outcome(console, outcome, settings)
    console.print(f"Code Quality report: {settings.report} ({_count(len(plan.findings), 'issue')})")
    return _gate(plan, settings.threshold)


def _asker(gateway: GatewayClient, prompt: str) -> ReviewFn:
    """The review function for `prepare_review`: one prompt call per chunk."""
    from lockgate.gitlab.review import ReviewAnswer

    async def ask(request: ReviewRequest) -> ReviewAnswer:
        answer = await gateway.prompt(prompt, request.input())
        return ReviewAnswer.from_json(answer.body, answer.version)

    return ask


def _explain(exc: Exception) -> str:
    from lockgate.gitlab.api import GitLabError

    text = str(exc)
    if isinstance(exc, GitLabError) and exc.status in (401, 403):
        text += (
            " (GITLAB_TOKEN needs the api scope and access to the project; "
            "CI_JOB_TOKEN cannot write merge request notes)"
        )
    return text


def _gate(plan: ReviewPlan, threshold: Severity | None) -> int:
    if plan.fails(threshold):
        _warn(f"a finding is at least {threshold}: failing the job (--fail-on {threshold})")
        return EXIT_FAILED
    return 0


# -- the review, posted by the gateway ------------------------------------------------------------


async def _via_gateway(settings: Settings, credential: str | None, timeout_s: float) -> int:
    from lockgate.gitlab.gateway import GatewayCallError, GatewayClient
    from lockgate.gitlab.quality import write_report

    endpoint = f"{settings.url.rstrip('/')}/gitlab/merge-requests/review"
    if not credential:
        _unusable("--via-gateway needs the job's ID token in LOCKGATE_ID_TOKEN (id_tokens)")
    if settings.dry_run:
        request = {
            "project": settings.project,
            "merge_request_iid": settings.iid,
            "prompt": settings.prompt,
        }
        _console().print(f"Dry run: would POST {endpoint} {request}; nothing sent.")
        return 0
    async with GatewayClient(settings.url, credential, timeout_s=timeout_s) as gateway:
        try:
            answer = await gateway.review_merge_request(
                settings.project, settings.iid, settings.prompt
            )
        except GatewayCallError as exc:
            _unusable(exc.message)
    data = answer if isinstance(answer, dict) else {}
    for warning in data.get("warnings") or []:
        _warn(str(warning))
    issues = _report_issues(data.get("report"))
    if issues is None:
        _warn("the gateway's answer has no Code Quality report: none written")
    else:
        try:
            write_report(settings.report, issues)
        except OSError as exc:
            _unusable(f"cannot write the Code Quality report {settings.report}: {exc.strerror}")
    findings = [f for f in data.get("findings") or [] if isinstance(f, dict)]
    note = data.get("note")
    action = note.get("action", "posted") if isinstance(note, dict) else "posted"
    _console().print(
        f"The gateway reviewed {settings.project}!{settings.iid}: "
        f"{_count(len(findings), 'finding')}, summary note {action}"
    )
    worst = [f["severity"] for f in findings if is_severity(f.get("severity"))]
    threshold = settings.threshold
    if threshold is not None and any(
        SEVERITIES.index(s) >= SEVERITIES.index(threshold) for s in worst
    ):
        _warn(f"a finding is at least {threshold}: failing the job (--fail-on {threshold})")
        return EXIT_FAILED
    return 0


def _report_issues(value: object) -> list[QualityIssue] | None:
    """The Code Quality issues of the gateway's answer; None when it has none in GitLab's form."""
    if not isinstance(value, list):
        return None
    issues = []
    for item in value:
        try:
            location = item["location"]
            severity = item["severity"]
            if not is_severity(severity):
                return None
            issues.append(
                QualityIssue(
                    description=str(item["description"]),
                    check_name=str(item["check_name"]),
                    fingerprint=str(item["fingerprint"]),
                    severity=severity,
                    path=str(location["path"]),
                    line=int(location["lines"]["begin"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            return None
    return issues


# -- output ---------------------------------------------------------------------------------------


def _print_plan(console: Console, plan: ReviewPlan, settings: Settings) -> None:
    mr = plan.merge_request
    head = mr.diff_refs.head_sha[:12] if mr.diff_refs else "?"
    console.print(f"[bold]{settings.project}!{mr.iid}[/bold] {_escape(mr.title)} at {head}")
    reviewed = f"{_count(plan.requests, 'model request')} to {settings.prompt}"
    if plan.versions:
        reviewed += f" ({', '.join(plan.versions)})"
    console.print(f"{reviewed}; {_count(len(plan.skipped), 'file')} not reviewed")
    for path, reason in plan.skipped:
        console.print(f"  [dim]skipped {_escape(path)}: {reason}[/dim]")


def _print_outcome(console: Console, outcome: ReviewOutcome, settings: Settings) -> None:
    from lockgate.gitlab.review_notes import render_discussion

    if outcome.results:
        table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
        for header in ("SEVERITY", "LOCATION", "THREAD", "FINDING"):
            table.add_column(header, overflow="fold", no_wrap=header != "FINDING")
        for result in outcome.results:
            finding = result.finding
            status = result.status if result.reason is None else f"summary: {result.reason}"
            table.add_row(
                finding.severity,
                f"{finding.path}:{finding.line}",
                status,
                Text(finding.message),
            )
        console.print(table)
    else:
        console.print("No findings.")
    if settings.dry_run:
        console.print(_panel(f"summary note ({outcome.note_action})", outcome.note_body))
        for result in outcome.results:
            if result.status == "planned":
                finding = result.finding
                title = f"new thread at {finding.path}:{finding.line}"
                console.print(_panel(title, render_discussion(finding, settings.prompt)))
        console.print("Dry run: nothing was posted.")
        return
    created = sum(result.status == "created" for result in outcome.results)
    console.print(
        f"Posted {_count(created, 'new thread')}; summary note {outcome.note_action} "
        f"(note {outcome.note_id}); {outcome.plan.merge_request.web_url}"
    )


def _panel(title: str, body: str) -> Panel:
    return Panel(Text(body), title=title, title_align="left", box=box.ROUNDED, expand=False)


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def _severity(value: str) -> Severity:
    if not is_severity(value):
        raise typer.BadParameter(f"unknown severity {value!r}", param_hint="'--fail-on'")
    return value


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def _unusable(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_UNUSABLE)


def _exit(code: int) -> NoReturn:
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    from lockgate.cli import ci_jobs  # noqa: F401  (adds sentiment, testgen and docs to ci_app)

    app.add_typer(ci_app, name="ci")
