"""`lockgate serve`: check the config, then run the gateway with uvicorn.

The command itself only checks and reports; the serving happens in `lockgate.worker`, which this
process becomes (one worker) or starts (several), so that no serving process holds the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from uvicorn.supervisors import Multiprocess

from lockgate.config.defaults import resolve_config
from lockgate.config.loader import ConfigError
from lockgate.config.models import GatewayConfig
from lockgate.config.references import shared_counters_problem
from lockgate.telemetry.logging import configure_logging
from lockgate.telemetry.metrics import (
    prepare_multiprocess_dir,
    remove_multiprocess_dir,
    worker_exited,
)
from lockgate.transport.proxies import Proxies, ProxyConfigError
from lockgate.worker import OVERRIDES_ENV, SOURCE_ENV

__all__ = ["register"]


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
    try:
        proxies = Proxies(os.environ)
    except ProxyConfigError as exc:
        typer.echo(f"lockgate: {exc}", err=True)
        raise typer.Exit(1) from None
    proxy_report = proxies.describe()
    if proxy_report is not None:
        console.print(f"[cyan]lockgate:[/] {proxy_report}", highlight=False)
    _migrate_in_child(gateway_config.storage.database)
    # Serving processes rebuild the config the same way, with the same command-line overrides
    # (a reload re-applies them, and admin checks see the real worker count).
    os.environ[SOURCE_ENV] = resolved.source
    os.environ[OVERRIDES_ENV] = json.dumps({"workers": server.workers, "listen": server.listen})
    # Until the app installs its reload handler, a SIGHUP must not end the process (the
    # disposition survives the exec below).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if server.workers == 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "lockgate.worker"])
    observability = gateway_config.observability
    configure_logging(observability.log_format, observability.log_level)
    from lockgate.admin import SUPERVISED_ENV
    from lockgate.serving import uvicorn_options

    os.environ[SUPERVISED_ENV] = "1"
    # The workers' metrics meet in files there; the environment names it to them.
    metrics_dir = prepare_multiprocess_dir(server.workers)
    try:
        options = uvicorn_options(server, observability.log_level)
        uvicorn_config = uvicorn.Config(
            "lockgate.worker:worker_app", factory=True, workers=server.workers, **options
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


MIGRATE_TIMEOUT_S = 300


def _migrate_in_child(database_url: str) -> None:
    """Bring the database to the newest schema in a short-lived process, so the workers find it
    current and never load Alembic (~15 MB each). Failing here is not fatal: each worker opens
    the database itself and reports a problem with it as it does without this step."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            [sys.executable, "-m", "lockgate.storage.migrate"],
            input=database_url.encode(),
            capture_output=True,
            check=False,
            timeout=MIGRATE_TIMEOUT_S,
        )


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


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
