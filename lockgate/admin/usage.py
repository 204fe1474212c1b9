"""`GET /admin/usage`: the usage ledger summed per key, team, model, provider, prompt or day.

The same report as `lockgate usage --format json`, over HTTP with the admin key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from lockgate.admin.routes import Running, require_admin
from lockgate.admin.schemas import UsageGroup, UsageNumbers, UsageReportView
from lockgate.storage.usage_report import Grouping, parse_since, total

__all__ = ["router"]

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)], tags=["usage"])

Name = Annotated[str | None, Query(max_length=256)]
When = Annotated[str | None, Query(max_length=64)]


@router.get("/usage", response_model=UsageReportView, response_model_exclude_unset=True)
async def usage_report(
    running: Running,
    by: Grouping = "model",
    since: When = None,
    until: When = None,
    team: Name = None,
    key: Name = None,
    model: Name = None,
) -> UsageReportView:
    """Requests, errors, tokens, cost and latency per group, most expensive first (`day`: by
    date). `since` and `until` take `30m`, `24h`, `7d`, `2w` (ago) or an ISO date or time (UTC
    when it names no zone); `since` defaults to `7d`, `until` to now (excluded). `team`, `key`
    and `model` keep only those requests. Empty parameters count as not given."""
    services, _ = running
    now = datetime.now(UTC).replace(microsecond=0)
    start = _moment("since", since or "7d", now)
    end = _moment("until", until, now) if until else None
    if end is not None and end <= start:
        raise HTTPException(422, f"until {until!r} is not after since {since or '7d'!r}")
    rows = await services.database.usage_report.summarize(
        by,
        start,
        end,
        team=_name("team", team),
        key=_name("key", key),
        model=_name("model", model),
    )
    return UsageReportView(
        by=by,
        since=start,
        until=end,
        rows=[UsageGroup(**row.as_dict(by)) for row in rows],
        totals=UsageNumbers(**total(rows).as_dict()),
    )


def _name(parameter: str, value: str | None) -> str | None:
    """None for a parameter not given or empty; NUL, which no database stores, refused."""
    if value and "\x00" in value:
        raise HTTPException(422, f"{parameter}: must not contain NUL characters")
    return value or None


def _moment(name: str, text: str, now: datetime) -> datetime:
    try:
        return parse_since(text, now)
    except ValueError as exc:
        raise HTTPException(422, f"{name}: {exc}") from None
