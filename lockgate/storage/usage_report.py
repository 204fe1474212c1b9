"""Usage reports: the ledger (`usage` table) summed per key, team, model, provider, prompt or day.

One `GROUP BY` query per report, the same on SQLite and PostgreSQL but for the day bucket: both
store `created_at` in UTC, SQLite as text (`date()` cuts it), PostgreSQL as `timestamptz` (shifted
to UTC before `to_char`, whatever the session's time zone). Sums are kept, not averages, so the
totals of a report are exact (`total(rows)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, String, case, func, literal_column, select

from lockgate.storage.engine import Transactions
from lockgate.storage.tables import UsageRow
from lockgate.storage.urls import Backend

__all__ = [
    "GROUPINGS",
    "GROUP_COLUMNS",
    "Grouping",
    "UsageReport",
    "UsageSummary",
    "parse_since",
    "total",
]

Grouping = Literal["key", "team", "model", "provider", "prompt", "day"]
GROUPINGS: tuple[Grouping, ...] = get_args(Grouping)

GROUP_COLUMNS: dict[Grouping, tuple[str, ...]] = {
    "key": ("key",),
    "team": ("team",),
    "model": ("model",),
    "provider": ("provider",),
    "prompt": ("prompt", "prompt_version"),
    "day": ("day",),
}
"""The names of each grouping's values, in `UsageSummary.group` order (and in reports)."""

DURATION = re.compile(r"^(\d{1,9})\s*([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """The requests of one group (or of a whole report, `group == ()`)."""

    group: tuple[str | None, ...]
    """The group's values, named by `GROUP_COLUMNS[by]` (None: requests without one)."""
    requests: int
    errors: int
    """Requests answered with a status of 400 or more."""
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd_micros: int
    estimated: int
    """Requests whose token counts are the gateway's estimate (the provider reported none)."""
    cache_hits: int
    latency_ms_sum: float
    max_latency_ms: float
    ttft_ms_sum: float
    ttft_count: int
    """Requests with a time to first token (successful streams)."""

    @property
    def cost_usd(self) -> float:
        return self.cost_usd_micros / 1_000_000

    @property
    def avg_latency_ms(self) -> float:
        return self.latency_ms_sum / self.requests if self.requests else 0.0

    @property
    def avg_ttft_ms(self) -> float | None:
        return self.ttft_ms_sum / self.ttft_count if self.ttft_count else None

    def as_dict(self, by: Grouping | None = None) -> dict[str, Any]:
        """JSON-safe: the group's values named by `by` (none when None), then the numbers."""
        names = GROUP_COLUMNS[by] if by is not None else ()
        values: dict[str, Any] = dict(zip(names, self.group, strict=True))
        ttft = self.avg_ttft_ms
        values.update(
            requests=self.requests,
            errors=self.errors,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cached_tokens=self.cached_tokens,
            cost_usd=round(self.cost_usd, 6),
            estimated=self.estimated,
            cache_hits=self.cache_hits,
            avg_latency_ms=round(self.avg_latency_ms, 3),
            max_latency_ms=round(self.max_latency_ms, 3),
            avg_ttft_ms=None if ttft is None else round(ttft, 3),
        )
        return values


def total(rows: list[UsageSummary]) -> UsageSummary:
    """All `rows` as one (exact: the rows keep sums, not averages)."""
    return UsageSummary(
        group=(),
        requests=sum(row.requests for row in rows),
        errors=sum(row.errors for row in rows),
        input_tokens=sum(row.input_tokens for row in rows),
        output_tokens=sum(row.output_tokens for row in rows),
        cached_tokens=sum(row.cached_tokens for row in rows),
        cost_usd_micros=sum(row.cost_usd_micros for row in rows),
        estimated=sum(row.estimated for row in rows),
        cache_hits=sum(row.cache_hits for row in rows),
        latency_ms_sum=sum(row.latency_ms_sum for row in rows),
        max_latency_ms=max((row.max_latency_ms for row in rows), default=0.0),
        ttft_ms_sum=sum(row.ttft_ms_sum for row in rows),
        ttft_count=sum(row.ttft_count for row in rows),
    )


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A point in time: `30m`, `24h`, `7d`, `2w` (that long before `now`), or an ISO 8601 date
    or time (`2025-01-31`, `2025-01-31T12:00:00Z`; UTC when it names no zone). Raises
    `ValueError` saying what was expected."""
    value = text.strip()
    match = DURATION.match(value)
    try:
        if match:
            moment = (now or datetime.now(UTC)) - timedelta(
                seconds=int(match[1]) * UNIT_SECONDS[match[2]]
            )
        else:
            moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise ValueError(
            "expected a duration like 30m, 24h, 7d or 2w, or a date or time like 2025-01-31 "
            f"or 2025-01-31T12:00:00Z; got {text!r}"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class UsageReport:
    """Reports over the `usage` table."""

    __slots__ = ("_tx",)

    def __init__(self, transactions: Transactions) -> None:
        self._tx = transactions

    async def summarize(
        self,
        by: Grouping,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        team: str | None = None,
        key: str | None = None,
        model: str | None = None,
    ) -> list[UsageSummary]:
        """One row per group of the requests made from `since` (inclusive) to `until`
        (exclusive), optionally of one team, key or model; by cost, highest first (`day`: by
        date)."""
        if by not in GROUP_COLUMNS:
            raise ValueError(
                f"cannot group usage by {by!r}: expected one of {', '.join(GROUPINGS)}"
            )
        groups = _group_expressions(by, self._tx.backend)
        cost = func.sum(UsageRow.cost_usd_micros)
        requests = func.count()
        query = select(
            *groups,
            requests,
            func.sum(case((UsageRow.status >= 400, 1), else_=0)),
            func.sum(UsageRow.input_tokens),
            func.sum(UsageRow.output_tokens),
            func.sum(UsageRow.cached_tokens),
            cost,
            func.sum(case((UsageRow.estimated, 1), else_=0)),
            func.sum(case((UsageRow.cache_hit, 1), else_=0)),
            func.sum(UsageRow.latency_ms),
            func.max(UsageRow.latency_ms),
            func.sum(UsageRow.ttft_ms),
            func.count(UsageRow.ttft_ms),
        ).group_by(*groups)
        if since is not None:
            query = query.where(UsageRow.created_at >= since)
        if until is not None:
            query = query.where(UsageRow.created_at < until)
        for column, wanted in (
            (UsageRow.team, team),
            (UsageRow.key_name, key),
            (UsageRow.model, model),
        ):
            if wanted is not None:
                query = query.where(column == wanted)
        if by == "day":
            query = query.order_by(groups[0])
        else:
            ordered = [group.asc().nulls_last() for group in groups]
            query = query.order_by(cost.desc(), requests.desc(), *ordered)
        async with self._tx.read() as session:
            result = await session.execute(query)
            return [_summary(row, len(groups)) for row in result.all()]


def _group_expressions(by: Grouping, backend: Backend) -> list[ColumnElement[Any]]:
    if by == "day":
        return [_utc_day(backend).label("day")]
    columns = {
        "key": [UsageRow.key_name],
        "team": [UsageRow.team],
        "model": [UsageRow.model],
        "provider": [UsageRow.provider],
        "prompt": [UsageRow.prompt, UsageRow.prompt_version],
    }[by]
    return [column.expression for column in columns]


def _utc_day(backend: Backend) -> ColumnElement[str]:
    """The UTC date of `created_at` as `YYYY-MM-DD`.

    Constants are inlined (`literal_column`), not bound: PostgreSQL would otherwise see the
    select's `$1` and the group by's `$5` as different expressions.
    """
    if backend == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), UsageRow.created_at)
        return func.to_char(utc, literal_column("'YYYY-MM-DD'"), type_=String())
    return func.date(UsageRow.created_at, type_=String())


def _summary(row: Any, width: int) -> UsageSummary:
    group = tuple(None if value is None else str(value) for value in row[:width])
    (
        requests,
        errors,
        input_tokens,
        output_tokens,
        cached_tokens,
        cost,
        estimated,
        cache_hits,
        latency_sum,
        latency_max,
        ttft_sum,
        ttft_count,
    ) = row[width:]
    return UsageSummary(
        group=group,
        requests=int(requests),
        errors=int(errors or 0),
        input_tokens=int(input_tokens or 0),
        output_tokens=int(output_tokens or 0),
        cached_tokens=int(cached_tokens or 0),
        cost_usd_micros=int(cost or 0),
        estimated=int(estimated or 0),
        cache_hits=int(cache_hits or 0),
        latency_ms_sum=float(latency_sum or 0.0),
        max_latency_ms=float(latency_max or 0.0),
        ttft_ms_sum=float(ttft_sum or 0.0),
        ttft_count=int(ttft_count or 0),
    )
