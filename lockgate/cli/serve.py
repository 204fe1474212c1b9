"""`lockgate serve`: run the gateway with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from lockgate.app import create_app
from lockgate.config.defaults import ResolvedConfig, resolve_config
from lockgate.config.loader import ConfigError
from lockgate.serving import uvicorn_options
from lockgate.telemetry.logging import configure_logging

__all__ = ["register", "worker_app"]

SOURCE_ENV = "LOCKGATE_CONFIG_SOURCE"


def serve(
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", help="Config file (default: ./lockgate.yaml, else built)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, max=64, help="Overrides server.workers.")
    ] = None,
    listen: Annotated[
        str | None, typer.Option("--listen", help="host:port; overrides server.listen.")
    ] = None,
) -> None:
    """Start the gateway."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        resolved = resolve_config(config, os.environ, Path.cwd())
    except ConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(1) from None
    settings = resolved.config.server
    overrides = {
        key: value for key, value in (("workers", workers), ("listen", listen)) if value is not None
    }
    if overrides:
        server = settings.model_validate({**settings.model_dump(), **overrides})
        resolved = ResolvedConfig(
            resolved.config.model_copy(update={"server": server}), resolved.source, resolved.notes
        )
        settings = server
    for note in resolved.notes:
        style = "bold yellow" if "SIMULATOR" in note else "cyan"
        console.print(f"[{style}]lockgate:[/] {note}", highlight=False)
    console.print(
        f"[cyan]lockgate:[/] listening on http://{settings.listen} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''})",
        highlight=False,
    )
    observability = resolved.config.observability
    configure_logging(observability.log_format, observability.log_level)
    common = uvicorn_options(settings, observability.log_level)
    if settings.workers == 1:
        uvicorn.run(create_app(resolved.config), **common)
        return
    os.environ[SOURCE_ENV] = resolved.source
    os.environ["LOCKGATE_WORKER_OVERRIDES"] = ",".join(f"{k}={v}" for k, v in overrides.items())
    uvicorn.run(
        "lockgate.cli.serve:worker_app",
        factory=True,
        workers=settings.workers,
        **common,
    )


def worker_app() -> object:
    """Factory a uvicorn worker process calls: rebuild the config the parent resolved."""
    source = os.environ.get(SOURCE_ENV, "")
    path = Path(source[5:]) if source.startswith("file:") else None
    resolved = resolve_config(path, os.environ, Path.cwd(), probe_ollama=source != "demo")
    config = resolved.config
    overrides = dict(
        pair.split("=", 1)
        for pair in os.environ.get("LOCKGATE_WORKER_OVERRIDES", "").split(",")
        if pair
    )
    if overrides:
        server = config.server.model_validate({**config.server.model_dump(), **overrides})
        config = config.model_copy(update={"server": server})
    observability = config.observability
    configure_logging(observability.log_format, observability.log_level)
    return create_app(config)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
