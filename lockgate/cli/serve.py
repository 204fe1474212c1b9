"""`lockgate serve`: run the gateway with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from lockgate.app import LockgateApp, create_app
from lockgate.config.defaults import ResolvedConfig, resolve_config
from lockgate.config.loader import ConfigError
from lockgate.config.models import GatewayConfig
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
        gateway_config = _with_overrides(resolved.config, workers=workers, listen=listen)
    except ConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(1) from None
    server = gateway_config.server
    for note in resolved.notes:
        style = "bold yellow" if "SIMULATOR" in note else "cyan"
        console.print(f"[{style}]lockgate:[/] {note}", highlight=False)
    plural = "s" if server.workers > 1 else ""
    console.print(
        f"[cyan]lockgate:[/] listening on http://{server.listen} ({server.workers} worker{plural})",
        highlight=False,
    )
    observability = gateway_config.observability
    configure_logging(observability.log_format, observability.log_level)
    options = uvicorn_options(server, observability.log_level)
    if server.workers == 1:
        uvicorn.run(create_app(gateway_config), **options)
        return
    # Worker processes rebuild the config the same way; the parent owns the listening socket,
    # so `listen` and `workers` overrides need not reach them.
    os.environ[SOURCE_ENV] = resolved.source
    uvicorn.run("lockgate.cli.serve:worker_app", factory=True, workers=server.workers, **options)


def _with_overrides(
    config: GatewayConfig, *, workers: int | None, listen: str | None
) -> GatewayConfig:
    changes = {key: value for key, value in (("workers", workers), ("listen", listen)) if value}
    if not changes:
        return config
    try:
        server = type(config.server).model_validate({**config.server.model_dump(), **changes})
    except ValidationError as exc:
        errors = (f"--{error['loc'][0]}: {error['msg']}" for error in exc.errors())
        raise typer.BadParameter("; ".join(errors)) from None
    return config.model_copy(update={"server": server})


def worker_app() -> LockgateApp:
    """Factory a uvicorn worker process calls: rebuild the config the parent resolved."""
    source = os.environ.get(SOURCE_ENV, "")
    path = Path(source.removeprefix("file:")) if source.startswith("file:") else None
    resolved: ResolvedConfig = resolve_config(
        path, os.environ, Path.cwd(), probe_ollama=source != "demo"
    )
    observability = resolved.config.observability
    configure_logging(observability.log_format, observability.log_level)
    return create_app(resolved.config)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
