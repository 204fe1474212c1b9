"""`lockgate serve`: run the gateway with uvicorn."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from uvicorn.supervisors import Multiprocess

if TYPE_CHECKING:  # the gateway itself loads only when it is served
    from lockgate.app import LockgateApp

from lockgate.config.defaults import ResolvedConfig, resolve_config
from lockgate.config.loader import ConfigError
from lockgate.config.models import GatewayConfig
from lockgate.config.references import shared_counters_problem
from lockgate.telemetry.logging import configure_logging
from lockgate.telemetry.metrics import (
    prepare_multiprocess_dir,
    remove_multiprocess_dir,
    worker_exited,
)

__all__ = ["register", "worker_app"]

SOURCE_ENV = "LOCKGATE_CONFIG_SOURCE"
OVERRIDES_ENV = "LOCKGATE_SERVER_OVERRIDES"


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
    problem = shared_counters_problem(gateway_config)
    if problem is not None:
        typer.echo(f"lockgate: {problem}", err=True)
        raise typer.Exit(1)
    observability = gateway_config.observability
    configure_logging(observability.log_format, observability.log_level)
    from lockgate.admin import SUPERVISED_ENV
    from lockgate.app import create_app
    from lockgate.serving import uvicorn_options

    options = uvicorn_options(server, observability.log_level)
    source = _source_path(resolved.source)
    overrides = {"workers": server.workers, "listen": server.listen}
    # Until the app installs its reload handler, a SIGHUP must not end the process.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if server.workers == 1:
        app = create_app(gateway_config, source, handle_sighup=True, server_overrides=overrides)
        uvicorn.run(app, **options)
        return
    # Worker processes rebuild the config the same way, with the same command-line overrides
    # (a reload re-applies them, and admin checks see the real worker count).
    os.environ[SOURCE_ENV] = resolved.source
    os.environ[OVERRIDES_ENV] = json.dumps(overrides)
    os.environ[SUPERVISED_ENV] = "1"
    # The workers' metrics meet in files there; the environment names it to them.
    metrics_dir = prepare_multiprocess_dir(server.workers)
    try:
        uvicorn_config = uvicorn.Config(
            "lockgate.cli.serve:worker_app", factory=True, workers=server.workers, **options
        )
        ReloadingSupervisor(uvicorn_config, sockets=[uvicorn_config.bind_socket()]).run()
    finally:
        if metrics_dir is not None:
            remove_multiprocess_dir(metrics_dir)


class ReloadingSupervisor(Multiprocess):
    """uvicorn's worker supervisor, except that SIGHUP asks each worker to reload its config
    (validated first, in-flight requests undisturbed) instead of restarting the workers, and
    that a worker gone (died and replaced, or removed) has its live metrics dropped.

    A worker still starting has no reload handler yet (and may have read the old file): it
    gets the signal once it reports ready. Readiness is asked on the supervisor's own loop,
    never from another thread: the health-check pipe must have one user.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending_hup: set[int] = set()
        self._worker_pids: set[int] = set()

    def handle_hup(self) -> None:
        self._pending_hup = {id(process) for process in self.processes}
        self._send_pending_hups()

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        self._forget_exited_workers()
        self._send_pending_hups()

    def init_processes(self) -> None:
        super().init_processes()
        self._forget_exited_workers()

    def _forget_exited_workers(self) -> None:
        pids = {pid for pid in (process.pid for process in self.processes) if pid is not None}
        for pid in self._worker_pids - pids:
            worker_exited(pid)
        self._worker_pids = pids

    def _send_pending_hups(self) -> None:
        for process in self.processes:
            if id(process) not in self._pending_hup:
                continue
            pid = process.process.pid
            if pid is not None and process.is_ready(timeout=1):
                os.kill(pid, signal.SIGHUP)
                self._pending_hup.discard(id(process))
        # Workers replaced meanwhile read the file afresh when they start.
        self._pending_hup &= {id(process) for process in self.processes}


def _source_path(source: str) -> Path | None:
    return Path(source.removeprefix("file:")) if source.startswith("file:") else None


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
    from lockgate.app import apply_server_overrides, create_app

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the app's reload handler is installed
    source = os.environ.get(SOURCE_ENV, "")
    path = _source_path(source)
    resolved: ResolvedConfig = resolve_config(
        path, os.environ, Path.cwd(), probe_ollama=source != "demo"
    )
    overrides = json.loads(os.environ.get(OVERRIDES_ENV, "{}"))
    config = apply_server_overrides(resolved.config, overrides)
    observability = config.observability
    configure_logging(observability.log_format, observability.log_level)
    return create_app(config, path, handle_sighup=True, server_overrides=overrides)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
