"""`lockgate config check|schema|diff`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperCommand

from lockgate.config.loader import ConfigError, load_config
from lockgate.config.models import GatewayConfig

if TYPE_CHECKING:  # the comparison and the prompt registry load when `diff` runs
    from lockgate.config.diff import ConfigSnapshot

__all__ = ["register"]

config_app = typer.Typer(
    help="Validate configuration, print its schema, compare it with a running gateway.",
    no_args_is_help=True,
)

DEFAULT_URL = "http://127.0.0.1:4000"
EXIT_CHANGES = 2
EXIT_INVALID = 1
EXIT_UNREACHABLE = 3
MAX_ERROR_BODY = 300


@config_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Config file to validate.")] = Path("lockgate.yaml"),
) -> None:
    """Validate FILE; print every mistake with file, line and key path. Exit 0 when valid."""
    out, err = Console(), Console(stderr=True)
    try:
        config = load_config(file)
    except ConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        count = len(exc.issues)
        err.print(f"[red]{count} error{'s' if count != 1 else ''}[/red] in {file}")
        raise typer.Exit(1) from None
    out.print(
        f"[green]ok[/green] {file}: {len(config.providers)} providers, {len(config.models)} models",
        soft_wrap=True,
    )


@config_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of lockgate.yaml (for editors and CI)."""
    typer.echo(json.dumps(GatewayConfig.model_json_schema(), indent=2))


class DiffFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class _DiffCommand(TyperCommand):
    """Command-line mistakes exit 1 rather than click's usual 2, which here means "changes"."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:  # click's UsageError and its kin
            exc.exit_code = EXIT_INVALID
            raise


@config_app.command("diff", cls=_DiffCommand)
def diff(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="The new config file (validated as `config check` does)."
        ),
    ] = Path("lockgate.yaml"),
    url: Annotated[
        str,
        typer.Option("--url", envvar="LOCKGATE_URL", metavar="URL", help="The running gateway."),
    ] = DEFAULT_URL,
    admin_key: Annotated[
        str | None,
        typer.Option(
            "--admin-key",
            envvar="LOCKGATE_ADMIN_KEY",
            metavar="KEY",
            help="The running gateway's admin key (needed with --url).",
            show_default=False,
        ),
    ] = None,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            metavar="OTHER_FILE",
            help="Compare with this config file instead of a gateway (offline; --url unused).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        DiffFormat,
        typer.Option("--format", help="text, markdown (a merge request note) or json."),
    ] = DiffFormat.text,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, metavar="S", help="Seconds for the gateway.")
    ] = 10.0,
) -> None:
    """What FILE would change on a running gateway (or compared with OTHER_FILE).

    Compares models, providers, keys, teams, limits, budgets, routing, cache,
    guardrails, observability, server and storage settings, and prompt files.
    Secrets show as changed, never their values. The gateway's side comes from
    its GET /admin/config; FILE is read with its ${VARS} from the environment and
    with its prompts folder, as a reload would read it.

    Exit codes (as with `git diff --exit-code`, but 1 is taken):
    0 no change; 2 changes, printed on stdout;
    1 FILE or OTHER_FILE is invalid (every error printed), or a wrong option;
    3 the gateway is unreachable, refused the admin key, or answered wrongly.
    """
    from lockgate.config.diff import OFFLINE_KEY, compare, with_overrides
    from lockgate.config.diff_render import render_json, render_text

    if against is not None:
        old = _file_snapshot(against, OFFLINE_KEY)
        new = _file_snapshot(file, OFFLINE_KEY)
        old_name = str(against)
    else:
        if not url.startswith(("http://", "https://")):
            _usage("expected an http:// or https:// URL", "--url")
        if not admin_key:
            _usage("the gateway's admin key is needed (or LOCKGATE_ADMIN_KEY)", "--admin-key")
        key = admin_key.strip()
        new = _file_snapshot(file, key.encode())
        old = _fetch(url.rstrip("/"), key, timeout)
        new = with_overrides(new, old.overrides)  # a reload keeps what `serve` was told
        old_name = f"the gateway at {url.rstrip('/')}"
    changes = compare(old, new)
    if output is DiffFormat.json:
        text = render_json(changes, old_name, str(file))
    else:
        text = render_text(changes, old_name, str(file), markdown=output is DiffFormat.markdown)
    typer.echo(text, nl=False)
    if changes:
        raise typer.Exit(EXIT_CHANGES)


def _file_snapshot(path: Path, key: bytes) -> ConfigSnapshot:
    """A config file and its prompts folder, validated as `config check` and a reload do."""
    from lockgate.config.diff import snapshot
    from lockgate.container import load_prompts
    from lockgate.prompts.files import PromptFilesError

    try:
        config = load_config(path)
        registry = load_prompts(config, path.parent)
    except ConfigError as exc:
        _invalid(path, [str(issue) for issue in exc.issues])
    except PromptFilesError as exc:
        _invalid(path, exc.problems)
    return snapshot(config, registry, key=key, source=str(path))


def _invalid(path: Path, problems: list[str]) -> NoReturn:
    for problem in problems:
        typer.echo(problem, err=True)
    count = len(problems)
    typer.echo(f"{count} error{'s' if count != 1 else ''} in {path}", err=True)
    raise typer.Exit(EXIT_INVALID)


def _usage(message: str, option: str) -> NoReturn:
    error = typer.BadParameter(message, param_hint=f"'{option}'")
    error.exit_code = EXIT_INVALID
    raise error


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it would send the admin key to another address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _fetch(url: str, admin_key: str, timeout: float) -> ConfigSnapshot:
    """The running gateway's snapshot; exits 3 when it cannot be had."""
    from lockgate.config.diff import ConfigSnapshot

    request = urllib.request.Request(
        f"{url}/admin/config",
        headers={
            "authorization": f"Bearer {admin_key}",
            "accept": "application/json",
            "user-agent": "lockgate-config-diff",
        },
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        _unreachable(_refusal(url, exc))
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        _unreachable(f"cannot reach the gateway at {url}: {reason}")
    try:
        return ConfigSnapshot.model_validate_json(body)
    except ValidationError:
        _unreachable(f"{url}/admin/config did not answer with a gateway config")


def _refusal(url: str, error: urllib.error.HTTPError) -> str:
    if error.code == 401:
        return f"the gateway at {url} refused the admin key (401)"
    if error.code == 404:
        return f"{url} has no /admin/config: not a Lockgate gateway, or one older than this command"
    if 300 <= error.code < 400:
        return f"{url}/admin/config redirects to {error.headers.get('location')}: use that URL"
    detail = error.read(MAX_ERROR_BODY).decode(errors="replace").strip()
    return f"the gateway at {url} answered {error.code}: {detail}"


def _unreachable(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_UNREACHABLE)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
