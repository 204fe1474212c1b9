"""`lockgate prompts list|show|render|test`: the versioned prompts of a prompts folder.

`list`, `show` and `render` read the folder only (no gateway, no network). `test` runs the cases
of `prompts/<name>/tests.yaml` against a running gateway's `POST /v1/prompts/{name}`, prints a
table and a summary, optionally writes a JUnit XML report (for GitLab's merge request widget), and
exits 0 when every case passed, 1 when one failed (or a file is wrong), 2 when the gateway could
not be reached, refused the key, or the command was misused.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from lockgate.config.loader import ConfigError, ConfigIssue
from lockgate.errors import GatewayError
from lockgate.prompts.cases import load_cases, render_value
from lockgate.prompts.junit import JUnitCase, JUnitSuite, write_junit

if TYPE_CHECKING:  # aiohttp and the registry (jinja2, jsonschema) load when a command runs
    from lockgate.prompts.files import LabelTarget, MessageSpec
    from lockgate.prompts.registry import PromptRegistry, PromptVersion
    from lockgate.prompts.testing import CaseResult, Suite, Unusable

__all__ = ["register"]

DEFAULT_URL = "http://127.0.0.1:4000"
EXIT_FAILED = 1
EXIT_UNUSABLE = 2

prompts_app = typer.Typer(
    help="List, show, render and test the versioned prompts of a prompts folder.",
    no_args_is_help=True,
)

DirOption = Annotated[
    Path,
    typer.Option("--dir", "-d", metavar="DIR", help="The prompts folder.", show_default=True),
]
RefArgument = Annotated[
    str,
    typer.Argument(
        metavar="REF",
        help="A prompt reference: sentiment, sentiment@1.1.0, sentiment@^1, sentiment@canary.",
        show_default=False,
    ),
]


# -- list, show, render ---------------------------------------------------------------------------


@prompts_app.command("list")
def list_prompts(directory: DirOption = Path("prompts")) -> None:
    """Every prompt: its versions, labels and description."""
    registry = _load(directory)
    names = registry.names()
    if not names:
        typer.echo(f"no prompts in {directory}", err=True)
        return
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for header in ("NAME", "VERSIONS", "LABELS", "DESCRIPTION"):
        table.add_column(header, overflow="fold")
    for name in names:
        versions = ", ".join(version.version for version in registry.versions(name))
        labels = "\n".join(_label_text(*item) for item in registry.labels(name).items())
        table.add_row(name, versions, labels or "-", _default(registry, name).description or "")
    _console().print(table)


@prompts_app.command("show")
def show(reference: RefArgument, directory: DirOption = Path("prompts")) -> None:
    """A version's details: model, parameters, input and output schemas, message templates."""
    registry = _load(directory)
    version, label = _resolve(registry, reference)
    console = _console()
    title = f"[bold]{version.name}@{version.version}[/bold]"
    if label is not None:
        title += f"  (label {label})"
    console.print(title)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column(overflow="fold")
    facts.add_row("description", version.description or "-")
    facts.add_row("model", version.model)
    params = json.dumps(version.params, ensure_ascii=False, default=_jsonable)
    facts.add_row("params", params if version.params else "-")
    facts.add_row("stream", "yes" if version.stream else "no")
    facts.add_row("file", f"{version.path}  (sha256 {version.sha256[:12]})")
    console.print(facts)
    console.print(_json_panel("input schema", version.input_schema))
    if version.output_schema is not None:
        console.print(_json_panel("output schema (the answer is JSON)", version.output_schema))
    else:
        console.print('[dim]no output schema: the answer is free text, {"text": ...}[/dim]')
    for message in _templates(version):
        console.print(_message_panel(message.role, message.content, "template"))


@prompts_app.command("render")
def render(
    reference: RefArgument,
    input_text: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            metavar="JSON|@FILE",
            help="The input: a JSON object, or @file.json.",
            show_default=False,
        ),
    ],
    directory: DirOption = Path("prompts"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the messages as JSON.")] = False,
) -> None:
    """Check an input against the input schema and print the messages it renders to."""
    registry = _load(directory)
    version, _ = _resolve(registry, reference)
    data = _input(input_text)
    violations = version.input_violations(data)
    if violations:
        for violation in violations:
            typer.echo(f"input: {violation}", err=True)
        _fail(
            f"the input is not valid for {version.name}@{version.version} "
            f"({_count(len(violations), 'problem')})"
        )
    try:
        messages = version.render(data)
    except GatewayError as exc:  # a template that fails on this input
        _fail(exc.message)
    if as_json:
        typer.echo(json.dumps(messages, indent=2, ensure_ascii=False))
        return
    console = _console()
    console.print(f"[bold]{version.name}@{version.version}[/bold]  model {version.model}")
    for message in messages:
        console.print(_message_panel(message["role"], message["content"], "rendered"))


def _load(directory: Path) -> PromptRegistry:
    """The prompts folder's registry; its mistakes are printed, every one, and exit 1."""
    from lockgate.prompts.files import PromptFilesError
    from lockgate.prompts.registry import PromptRegistry

    try:
        return PromptRegistry.load(directory, required=True)
    except PromptFilesError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        _fail(f"{_count(len(exc.issues), 'problem')} in {directory}")


def _resolve(registry: PromptRegistry, reference: str) -> tuple[PromptVersion, str | None]:
    try:
        resolved = registry.resolve(reference)
    except GatewayError as exc:
        _fail(exc.message)
    return resolved.version, resolved.label


def _default(registry: PromptRegistry, name: str) -> PromptVersion:
    """What `name` alone resolves to; the highest version when nothing does (pre-releases only)."""
    try:
        return registry.resolve(name).version
    except GatewayError:
        return registry.versions(name)[-1]


def _label_text(label: str, target: LabelTarget) -> str:
    weight = "" if target.weight is None else f" ({target.weight}%)"
    return f"{label} → {target.version}{weight}"


def _templates(version: PromptVersion) -> list[MessageSpec]:
    """The message templates as written in the version file (the registry keeps them compiled)."""
    from lockgate.prompts.files import MessageSpec

    try:
        data = YAML(typ="safe").load(version.path.read_text(encoding="utf-8"))
        return [MessageSpec.model_validate(message) for message in data["messages"]]
    except (OSError, YAMLError, ValidationError, KeyError, TypeError) as exc:
        _fail(f"cannot read the messages of {version.path}: {exc}")


def _input(text: str) -> Any:
    source = "--input"
    if text.startswith("@"):
        path = Path(text[1:])
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{source} is not JSON: {exc}", param_hint="'--input'") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{source}: expected a JSON object", param_hint="'--input'")
    return data


def _json_panel(title: str, value: Any) -> Panel:
    syntax = Syntax(_json(value), "json", theme="ansi_dark", background_color="default")
    return Panel(syntax, title=title, title_align="left", box=box.ROUNDED, expand=False)


def _message_panel(role: str, content: str, kind: str) -> Panel:
    title = f"{role} ({kind})"
    return Panel(Text(content), title=title, title_align="left", box=box.ROUNDED, expand=False)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=_jsonable)


def _jsonable(value: object) -> object:
    """Read-only mappings (the registry's schemas and params) print as objects."""
    return dict(value) if isinstance(value, Mapping) else str(value)


# -- test -----------------------------------------------------------------------------------------


@prompts_app.command("test")
def run_tests(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="NAME[@REF]",
            help="Prompts to test (default: every prompt with a tests.yaml).",
            show_default=False,
        ),
    ] = None,
    directory: DirOption = Path("prompts"),
    url: Annotated[
        str,
        typer.Option("--url", envvar="LOCKGATE_URL", metavar="URL", help="The gateway."),
    ] = DEFAULT_URL,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            envvar=["LOCKGATE_API_KEY", "LOCKGATE_ID_TOKEN"],
            metavar="KEY",
            help="API key or GitLab CI ID token (none for an open gateway).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            metavar="REF",
            help="Version to test, what follows @ in a reference: 1.2.0, ^1, ~1.2, canary.",
            show_default=False,
        ),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", metavar="PATH", help="Write a JUnit XML report here."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Cases in flight at once.")
    ] = 4,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, metavar="S", help="Seconds per case.")
    ] = 120.0,
) -> None:
    """Run prompts/<name>/tests.yaml against a running gateway.

    Exit 0 when every case passed, 1 when one failed, 2 when the gateway was unusable.
    """
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("expected an http:// or https:// URL", param_hint="'--url'")
    from lockgate.prompts.testing import Unusable

    registry = _load(directory)
    suites = _suites(registry, directory, names or [], version)
    started = time.perf_counter()
    try:
        target = Target(url.rstrip("/"), key, concurrency, timeout)
        with _progress(sum(len(suite.cases) for suite in suites)) as progress:
            results = asyncio.run(_run(suites, registry, target, progress))
    except Unusable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_UNUSABLE) from None
    elapsed = time.perf_counter() - started
    _print_results(results)
    failed = sum(not result.passed for result in results)
    summary = f"{len(results) - failed} passed, {failed} failed in {elapsed:.1f}s"
    _console().print(f"[red]{summary}[/red]" if failed else f"[green]{summary}[/green]")
    if junit is not None:
        try:
            write_junit(junit, _junit_suites(suites, results), name="lockgate prompts test")
        except OSError as exc:
            typer.echo(f"error: cannot write the JUnit report {junit}: {exc.strerror}", err=True)
            raise typer.Exit(EXIT_UNUSABLE) from None
        typer.echo(f"JUnit report written to {junit}", err=True)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _suites(
    registry: PromptRegistry, directory: Path, names: list[str], version: str | None
) -> list[Suite]:
    from lockgate.prompts.files import TESTS_FILE
    from lockgate.prompts.testing import Suite

    known = registry.names()
    wanted: list[tuple[str, str | None]] = []
    for text in names:
        name, at, ref = text.partition("@")
        if name not in known:
            _usage(f"no prompt named {name!r} in {directory}", "NAME")
        if any(name == seen for seen, _ in wanted):
            _usage(f"prompt {name!r} is named twice", "NAME")
        if at and version is not None:
            _usage(f"{text}: give a version with @ or --version, not both", "NAME")
        if not (directory / name / TESTS_FILE).is_file():
            _usage(f"prompt {name!r} has no {directory / name / TESTS_FILE}", "NAME")
        wanted.append((name, ref if at else version))
    if not names:
        wanted = [(n, version) for n in known if (directory / n / TESTS_FILE).is_file()]
        if not wanted:
            _usage(f"no prompt in {directory} has a {TESTS_FILE}", "NAME")
    suites: list[Suite] = []
    issues: list[ConfigIssue] = []
    for prompt, chosen in wanted:
        file = directory / prompt / TESTS_FILE
        try:
            suites.append(Suite(prompt, file, load_cases(file).tests, chosen))
        except ConfigError as exc:
            issues += exc.issues
    if issues:
        for issue in issues:
            typer.echo(str(issue), err=True)
        _fail(f"{_count(len(issues), 'problem')} in the tests files")
    return suites


@dataclass(frozen=True)
class Target:
    """The gateway the cases are sent to, and how."""

    url: str
    key: str | None
    concurrency: int
    timeout_s: float


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A spinner on stderr counting cases done, when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield lambda done: None
        return
    with Console(stderr=True).status(f"running {_count(total, 'case')}") as status:
        yield lambda done: status.update(f"{done}/{total} cases done")


async def _run(
    suites: list[Suite],
    registry: PromptRegistry,
    target: Target,
    progress: Callable[[int], None],
) -> list[CaseResult]:
    import aiohttp

    from lockgate.prompts.testing import Runner, Unusable

    headers = {"user-agent": "lockgate-prompts-test"}
    if target.key:
        headers["authorization"] = f"Bearer {target.key}"
    connector = aiohttp.TCPConnector(limit=target.concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        slots = asyncio.Semaphore(target.concurrency)
        runner = Runner(target.url, registry, session, slots, target.timeout_s, progress)
        try:
            async with asyncio.TaskGroup() as group:
                for suite in suites:
                    for case in suite.cases:
                        group.create_task(runner.run(suite, case))
        except ExceptionGroup as errors:
            unusable = errors.subgroup(Unusable)
            if unusable is None:
                raise
            raise _first(unusable) from None
    return [runner.results[suite.name, case.name] for suite in suites for case in suite.cases]


def _first(group: BaseExceptionGroup[Unusable]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _print_results(results: list[CaseResult]) -> None:
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for header in ("PROMPT", "VERSION", "CASE", "RESULT"):
        table.add_column(header, no_wrap=True)
    table.add_column("MS", justify="right", no_wrap=True)
    table.add_column("COST USD", justify="right", no_wrap=True)
    table.add_column("REASON", overflow="fold")
    for result in results:
        table.add_row(
            result.prompt,
            result.version or "-",
            result.case.name,
            Text("PASS", style="green") if result.passed else Text("FAIL", style="bold red"),
            "-" if result.status is None else f"{result.latency_ms:,.0f}",
            "-" if result.cost_usd is None else f"{result.cost_usd:.6f}",
            "\n".join(result.reasons),
        )
    _console().print(table)


def _junit_suites(suites: list[Suite], results: list[CaseResult]) -> list[JUnitSuite]:
    by_prompt: dict[str, list[JUnitCase]] = {}
    for result in results:
        by_prompt.setdefault(result.prompt, []).append(_junit_case(result, suites))
    return [JUnitSuite(suite.name, by_prompt.get(suite.name, [])) for suite in suites]


def _junit_case(result: CaseResult, suites: list[Suite]) -> JUnitCase:
    file = next(suite.file for suite in suites if suite.name == result.prompt)
    details = [
        f"version: {result.version or '-'}",
        f"HTTP status: {result.status if result.status is not None else '-'}",
        f"latency: {result.latency_ms:.0f} ms",
        f"cost: {'-' if result.cost_usd is None else f'${result.cost_usd:.6f}'}",
        f"request id: {result.request_id or '-'}",
        f"answer: {render_value(result.body, 4000)}",
    ]
    return JUnitCase(
        classname=result.prompt,
        name=result.case.name,
        time_s=result.latency_ms / 1000,
        failure="\n".join(result.reasons) if result.reasons else None,
        failure_type="expectation" if result.status == 200 else "request",
        file=str(file),
        system_out="\n".join(details),
    )


# -- shared ---------------------------------------------------------------------------------------


def _console() -> Console:
    # Not a terminal (a pipe, a test): don't squeeze tables into 80 columns.
    return Console(width=None if sys.stdout.isatty() else 250, highlight=False)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_FAILED)


def _usage(message: str, param: str) -> NoReturn:
    raise typer.BadParameter(message, param_hint=f"'{param}'")


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")
