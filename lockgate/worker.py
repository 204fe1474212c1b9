"""A serving process: rebuild the config `lockgate serve` resolved, build the app, serve it.

`lockgate serve` checks the config, prints what it will do, then replaces itself with
`python -m lockgate.worker` (one worker) or starts one such worker per process (`worker_app`,
several workers). A serving process so holds the gateway and none of the command line (typer,
rich, the other commands: about 14 MB of memory per worker).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from lockgate.config.defaults import resolve_config
from lockgate.telemetry.logging import configure_logging

if TYPE_CHECKING:
    from lockgate.app import LockgateApp

__all__ = ["OVERRIDES_ENV", "SOURCE_ENV", "main", "source_path", "worker_app"]

SOURCE_ENV = "LOCKGATE_CONFIG_SOURCE"
"""Where `lockgate serve` found the config (`file:PATH`, or how it built one)."""
OVERRIDES_ENV = "LOCKGATE_SERVER_OVERRIDES"
"""The command line's `server` settings (JSON), applied over the config's."""


def source_path(source: str) -> Path | None:
    return Path(source.removeprefix("file:")) if source.startswith("file:") else None


def worker_app() -> LockgateApp:
    """The app of one serving process (uvicorn calls this in each worker of several)."""
    from lockgate.app import apply_server_overrides, create_app

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the app's reload handler is installed
    source = os.environ.get(SOURCE_ENV, "")
    path = source_path(source)
    resolved = resolve_config(path, os.environ, Path.cwd(), probe_ollama=source != "demo")
    overrides = json.loads(os.environ.get(OVERRIDES_ENV, "{}"))
    config = apply_server_overrides(resolved.config, overrides)
    observability = config.observability
    configure_logging(observability.log_format, observability.log_level)
    return create_app(config, path, handle_sighup=True, server_overrides=overrides)


def main() -> None:
    """Serve with one worker, in this process."""
    import uvicorn

    from lockgate.serving import uvicorn_options

    app = worker_app()
    uvicorn.run(app, **uvicorn_options(app.config.server, app.config.observability.log_level))


if __name__ == "__main__":
    main()
