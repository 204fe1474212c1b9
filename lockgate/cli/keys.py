"""`lockgate keys create|list|revoke|hash`: API keys in the database, and hashes for the config.

A created key is printed once, on stdout and alone (so `KEY=$(lockgate keys create ...)` works);
only its hash is stored. Keys declared in the config file are listed too, but their names cannot
be taken by a stored key, and they are revoked by editing the file.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from lockgate.auth.keys import display_prefix, hash_key, new_key
from lockgate.cli.db import ConfigOption, config_name, fail, load_config, run
from lockgate.config.defaults import ResolvedConfig
from lockgate.config.models import BudgetConfig, KeyConfig, LimitsConfig

if TYPE_CHECKING:  # the storage stack loads only for commands that use the database
    from lockgate.storage import Database, StoredKey

__all__ = ["parse_expiry", "register"]

keys_app = typer.Typer(
    help="Create, list and revoke API keys; hash a key for the config file.", no_args_is_help=True
)

DURATION = re.compile(r"^(\d+)([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Period(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    total = "total"


def parse_expiry(text: str, now: datetime) -> datetime:
    """`30d`, `12h`, `2w` (from now) or an ISO 8601 date or time (UTC when no zone is given)."""
    match = DURATION.match(text.strip())
    if match:
        seconds = int(match[1]) * UNIT_SECONDS[match[2]]
        expires = now.replace(microsecond=0) + timedelta(seconds=seconds)
    else:
        try:
            expires = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"--expires: expected a duration like 30d, 12h or 2w, or a time like "
                f"2027-01-01T00:00:00Z; got {text!r}"
            ) from None
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
    if expires <= now:
        raise ValueError(f"--expires {text} is not in the future")
    return expires.astimezone(UTC)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Unique name of the key, e.g. ci-bot.")],
    team: Annotated[str | None, typer.Option("--team", help="Team the key belongs to.")] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Model name or glob the key may use; repeat for several (default: its team's).",
        ),
    ] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1, help="Tokens per minute.")] = None,
    parallel: Annotated[
        int | None, typer.Option("--parallel", min=1, help="Requests in flight at once.")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", help="Spend allowed per period, in USD.")
    ] = None,
    budget_period: Annotated[
        Period | None, typer.Option("--budget-period", help="Budget period (default: month).")
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="30d, 12h, 2w from now, or a time: 2027-01-01T00:00:00Z."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Create a key; it is printed once, only its hash is stored."""
    try:
        expires_at = None if expires is None else parse_expiry(expires, datetime.now(UTC))
    except ValueError as exc:
        fail(str(exc))
    budget = _budget(budget_usd, budget_period)
    resolved = load_config(config)
    _refuse_declared(resolved, name, "choose another name")
    key = new_key()

    async def store() -> StoredKey:
        from lockgate.storage import Database, NameTaken

        async with await Database.open(resolved.config.storage.database) as db:
            if team is not None and not await _team_exists(db, resolved, team):
                fail(f"no team named {team!r} in the config or the database")
            try:
                return await db.keys.create(
                    name,
                    key_hash=hash_key(key),
                    prefix=display_prefix(key),
                    team=team,
                    models=model or None,
                    limits=LimitsConfig(rpm=rpm, tpm=tpm, parallel=parallel),
                    budget=budget,
                    expires_at=expires_at,
                )
            except NameTaken:
                fail(f"a key named {name!r} already exists")

    stored = run(store())
    if as_json:
        typer.echo(json.dumps({"key": key, **_key_json(stored, "database")}, indent=2))
        return
    team_part = f", team {stored.team}" if stored.team else ""
    typer.echo(f"created key {stored.name} (prefix {stored.prefix}{team_part})", err=True)
    typer.echo(key)
    typer.echo("store it now: it is not shown again (only its hash is kept)", err=True)


def _budget(usd: float | None, period: Period | None) -> BudgetConfig | None:
    if usd is None:
        if period is not None:
            fail("--budget-period needs --budget-usd")
        return None
    try:
        return BudgetConfig(usd=usd, period=(period or Period.month).value)
    except ValidationError as exc:
        fail(f"--budget-usd: {exc.errors()[0]['msg']}")


@keys_app.command("list")
def list_keys(
    show_all: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """List keys from the config file and the database (never their hashes)."""
    resolved = load_config(config)

    async def fetch() -> list[StoredKey]:
        from lockgate.storage import Database

        async with await Database.open(resolved.config.storage.database) as db:
            return await db.keys.list(include_revoked=show_all)

    stored = run(fetch())
    declared = {key.name for key in resolved.config.keys}
    rows = [_declared_json(key) for key in resolved.config.keys] + [
        _key_json(key, "database") for key in stored if key.name not in declared
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no keys yet: create one with `lockgate keys create NAME`", err=True)
        return
    _print_table(rows)


@keys_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Name of the key.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key: gateways refuse it within about a second."""
    resolved = load_config(config)
    _refuse_declared(resolved, name, "remove it from the file to revoke it")

    async def revoke_key() -> bool:
        from lockgate.storage import Database

        async with await Database.open(resolved.config.storage.database) as db:
            if await db.keys.revoke(name):
                return True
            if await db.keys.get(name) is None:
                fail(f"no key named {name!r}")
            return False

    if run(revoke_key()):
        typer.echo(f"revoked key {name}")
    else:
        typer.echo(f"key {name} was revoked already")


@keys_app.command("hash")
def hash_command(
    key: Annotated[
        str | None,
        typer.Argument(help="The key; read from stdin when omitted.", show_default=False),
    ] = None,
) -> None:
    """Print a key's hash (sha256:...) for `keys:` in the config file."""
    if key is None:
        key = (
            typer.prompt("Key", hide_input=True) if sys.stdin.isatty() else sys.stdin.read()
        ).strip()
    if not key:
        fail("no key given (pass it as an argument or on stdin)")
    typer.echo(hash_key(key))


async def _team_exists(db: Database, resolved: ResolvedConfig, team: str) -> bool:
    if any(declared.name == team for declared in resolved.config.teams):
        return True
    return await db.teams.get(team) is not None


def _refuse_declared(resolved: ResolvedConfig, name: str, advice: str) -> None:
    if any(key.name == name for key in resolved.config.keys):
        fail(f"key {name!r} is declared in {config_name(resolved)}: {advice}")


def _status(expires_at: datetime | None, revoked: bool) -> str:
    if revoked:
        return "revoked"
    if expires_at is not None and expires_at <= datetime.now(UTC):
        return "expired"
    return "active"


def _key_json(key: StoredKey, source: str) -> dict[str, Any]:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "team": key.team,
        "models": None if key.models is None else list(key.models),
        "limits": key.limits.model_dump(mode="json", exclude_defaults=True),
        "budget": None if key.budget is None else key.budget.model_dump(mode="json"),
        "metadata": dict(key.metadata),
        "expires_at": _iso(key.expires_at),
        "created_at": _iso(key.created_at),
        "revoked_at": _iso(key.revoked_at),
        "status": _status(key.expires_at, key.revoked),
        "source": source,
    }


def _declared_json(key: KeyConfig) -> dict[str, Any]:
    return {
        "name": key.name,
        "prefix": None,
        "team": key.team,
        "models": key.models,
        "limits": key.limits.model_dump(mode="json", exclude_defaults=True),
        "budget": None if key.budget is None else key.budget.model_dump(mode="json"),
        "metadata": dict(key.metadata),
        "expires_at": _iso(key.expires_at),
        "created_at": None,
        "revoked_at": None,
        "status": _status(key.expires_at, False),
        "source": "config",
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "PREFIX", "TEAM", "MODELS", "LIMITS", "BUDGET", "EXPIRES", "STATUS"):
        table.add_column(column, no_wrap=True)
    table.add_column("SOURCE", no_wrap=True)
    for row in rows:
        table.add_row(
            row["name"],
            row["prefix"] or "-",
            row["team"] or "-",
            "team's" if row["models"] is None else ",".join(row["models"]),
            _limits_text(row["limits"]),
            _budget_text(row["budget"]),
            _moment_text(row["expires_at"]),
            row["status"],
            row["source"],
        )
    # Not a terminal (a pipe, a test): don't squeeze the table into 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 250, highlight=False)
    console.print(table)


def _limits_text(limits: dict[str, Any]) -> str:
    parts = [f"{name} {limits[name]}" for name in ("rpm", "tpm", "parallel") if name in limits]
    if limits.get("models"):
        parts.append(f"+{len(limits['models'])} per model")
    return ", ".join(parts) or "-"


def _moment_text(iso: str | None) -> str:
    if iso is None:
        return "never"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _budget_text(budget: dict[str, Any] | None) -> str:
    return "-" if budget is None else f"${budget['usd']:g}/{budget['period']}"


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
