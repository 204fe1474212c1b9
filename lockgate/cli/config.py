"""`lockgate config check|schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lockgate.config.loader import ConfigError, load_config
from lockgate.config.models import GatewayConfig

__all__ = ["register"]

config_app = typer.Typer(help="Validate configuration and print its schema.", no_args_is_help=True)


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


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
