"""`lockgate usage`: requests, tokens, cost and latency from the usage ledger, grouped.

Reads the database the gateway writes (found through the config like `lockgate keys`, or given
with `--database`). A table with a totals row on a terminal; `--format csv` or `json` for
scripts, on stdout. The JSON is what `GET /admin/usage` answers.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from lockgate.cli.db import ConfigOption, load_config, run

if TYPE_CHECKING:  # the storage stack loads only when the command runs
    from lockgate.storage.usage_report import Grouping, UsageSummary

__all__ = ["By", "Format", "register", "usage"]


class By(StrEnum):
    """The groupings of `lockgate.storage.usage_report.GROUPINGS` (a test keeps them equal)."""

    key = "key"
    team = "team"
    model = "model"
    provider = "provider"
    prompt = "prompt"
    day = "day"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


HEADERS = {
    "key": "KEY",
    "team": "TEAM",
    "model": "MODEL",
    "provider": "PROVIDER",
    "prompt": "PROMPT",
    "prompt_version": "VERSION",
    "day": "DAY (UTC)",
}
NUMBER_HEADERS = (
    "REQUESTS",
    "ERRORS",
    "INPUT TOK",
    "OUTPUT TOK",
    "CACHED TOK",
    "COST USD",
    "ESTIMATED",
    "CACHE HITS",
    "AVG MS",
    "MAX MS",
    "AVG TTFT MS",
)


def usage(
    by: Annotated[By, typer.Option("--by", help="Group requests by this.")] = By.model,
    since: Annotated[
        str,
        typer.Option(
            "--since", metavar="WHEN", help="From: 30m, 24h, 7d, 2w ago, or a date/time (UTC)."
        ),
    ] = "7d",
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="WHEN",
            help="Up to (excluded), same forms as --since (default: now).",
        ),
    ] = None,
    team: Annotated[
        str | None, typer.Option("--team", metavar="NAME", help="Only this team's requests.")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", metavar="NAME", help="Only this key's requests.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", metavar="NAME", help="Only requests for this model.")
    ] = None,
    output: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    config: ConfigOption = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database", metavar="URL", help="Database URL to read instead of the config's."
        ),
    ] = None,
) -> None:
    """Usage and cost from the ledger, grouped by key, team, model, provider, prompt or day."""
    from lockgate.storage.usage_report import total

    now = datetime.now(UTC).replace(microsecond=0)
    start = _moment(since, "--since", now)
    end = None if until is None else _moment(until, "--until", now)
    if end is not None and end <= start:
        raise typer.BadParameter(
            f"{until!r} is not after --since {since!r}", param_hint="'--until'"
        )
    if database is not None and config is not None:
        raise typer.BadParameter(
            "give -c/--config or --database, not both", param_hint="'--database'"
        )
    url = database if database is not None else load_config(config).config.storage.database
    grouping: Grouping = by.value

    async def fetch() -> list[UsageSummary]:
        from lockgate.storage import Database

        async with await Database.open(url) as db:
            return await db.usage_report.summarize(
                grouping, start, end, team=team, key=key, model=model
            )

    rows = run(fetch())
    if output is Format.json:
        report = {
            "by": grouping,
            "since": _iso(start),
            "until": _iso(end),
            "rows": [row.as_dict(grouping) for row in rows],
            "totals": total(rows).as_dict(),
        }
        typer.echo(json.dumps(report, indent=2))
    elif output is Format.csv:
        typer.echo(_csv(grouping, rows), nl=False)
    elif not rows:
        window = f"since {_iso(start)}" + ("" if end is None else f" until {_iso(end)}")
        typer.echo(f"no requests recorded {window}", err=True)
    else:
        _print_table(grouping, rows, total(rows))


def _moment(text: str, option: str, now: datetime) -> datetime:
    from lockgate.storage.usage_report import parse_since

    try:
        return parse_since(text, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _csv(grouping: Grouping, rows: list[UsageSummary]) -> str:
    from lockgate.storage.usage_report import GROUP_COLUMNS, total

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*GROUP_COLUMNS[grouping], *total([]).as_dict()])
    for row in rows:
        values = row.as_dict(grouping).values()
        writer.writerow(["" if value is None else value for value in values])
    return buffer.getvalue()


def _print_table(grouping: Grouping, rows: list[UsageSummary], totals: UsageSummary) -> None:
    from lockgate.storage.usage_report import GROUP_COLUMNS

    names = GROUP_COLUMNS[grouping]
    # Costs under $0.0001 would read 0.0000: then the whole column shows micro-dollars.
    places = 6 if any(0 < row.cost_usd_micros < 100 for row in rows) else 4
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, show_footer=True)
    footers = ["total", *[""] * (len(names) - 1)]
    for name, footer in zip(names, footers, strict=True):
        table.add_column(HEADERS[name], footer=footer, no_wrap=True)
    for header, footer in zip(NUMBER_HEADERS, _numbers(totals, places), strict=True):
        table.add_column(header, footer=footer, justify="right", no_wrap=True)
    for row in rows:
        labels = ["-" if value is None else value for value in row.group]
        table.add_row(*labels, *_numbers(row, places))
    # Not a terminal (a pipe, a test): don't squeeze the table into 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 250, highlight=False)
    console.print(table)


def _numbers(row: UsageSummary, places: int) -> list[str]:
    ttft = row.avg_ttft_ms
    return [
        f"{row.requests:,}",
        f"{row.errors:,}",
        f"{row.input_tokens:,}",
        f"{row.output_tokens:,}",
        f"{row.cached_tokens:,}",
        f"{row.cost_usd:,.{places}f}",
        f"{row.estimated:,}",
        f"{row.cache_hits:,}",
        f"{row.avg_latency_ms:,.0f}",
        f"{row.max_latency_ms:,.0f}",
        "-" if ttft is None else f"{ttft:,.0f}",
    ]


def register(app: typer.Typer) -> None:
    app.command("usage")(usage)
