"""`lockgate db upgrade`, and what every database command shares: config, errors, the event loop.

The config is found the way `lockgate serve` finds it (-c FILE, else ./lockgate.yaml, else the
built-in default), so these commands act on the database the gateway uses. Every failure a user
can cause is one `error: ...` line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from lockgate.config.defaults import ResolvedConfig, resolve_config
from lockgate.config.loader import ConfigError

if TYPE_CHECKING:  # the storage stack loads only for commands that use the database
    from lockgate.storage import Migration

__all__ = ["ConfigOption", "config_name", "fail", "load_config", "register", "run"]

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("-c", "--config", help="Config file (default: ./lockgate.yaml, else built)."),
]

db_app = typer.Typer(
    help="Manage the database: create or upgrade its tables.", no_args_is_help=True
)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def load_config(path: Path | None) -> ResolvedConfig:
    """The config `lockgate serve` would use; its mistakes are printed and exit 1."""
    try:
        return resolve_config(path, os.environ, Path.cwd(), probe_ollama=False)
    except ConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(1) from None


def config_name(resolved: ResolvedConfig) -> str:
    """How to name the config in a message: its file, or the built-in default."""
    if resolved.source.startswith("file:"):
        return resolved.source.removeprefix("file:")
    return "the built-in config"


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run `work`; a storage failure becomes one error line and exit code 1."""
    from lockgate.storage import StorageError

    try:
        return asyncio.run(work)
    except StorageError as exc:
        fail(str(exc))


@db_app.command("upgrade")
def upgrade_command(config: ConfigOption = None) -> None:
    """Create the database tables, or bring them to this version's schema.

    The gateway also does this when it starts; safe to run while it runs.
    """
    from lockgate.storage import upgrade

    resolved = load_config(config)
    migration = run(upgrade(resolved.config.storage.database))
    typer.echo(_describe(resolved, migration))


def _describe(resolved: ResolvedConfig, migration: Migration) -> str:
    from lockgate.storage import hide_password

    database = hide_password(resolved.config.storage.database)
    if not migration.changed:
        return f"{database}: schema {migration.after} is the latest, nothing to do"
    before = "empty" if migration.before is None else f"at {migration.before}"
    return f"{database}: upgraded to schema {migration.after} (was {before})"


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
