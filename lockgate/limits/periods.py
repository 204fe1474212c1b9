"""Budget periods: calendar spans in UTC, named so that a counter per period is a key per name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lockgate.config.models import BudgetPeriod

__all__ = ["period_end", "period_id"]


def _utc(now: datetime) -> datetime:
    """An aware time in UTC; a naive one is taken to be UTC already."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def period_id(period: BudgetPeriod, now: datetime) -> str:
    """ "2026-11-27" (day), "2026-W48" (ISO week: Monday first; week 1 holds the first
    Thursday, so early January can belong to the previous year's last week), "2026-11"
    (month), "total"."""
    now = _utc(now)
    if period == "day":
        return now.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = now.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if period == "month":
        return now.strftime("%Y-%m")
    return "total"


def period_end(period: BudgetPeriod, now: datetime) -> datetime | None:
    """When the period holding `now` ends (midnight UTC); None for `total`, which never does."""
    now = _utc(now)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return midnight + timedelta(days=1)
    if period == "week":
        return midnight + timedelta(days=7 - now.weekday())
    if period == "month":
        if now.month == 12:
            return midnight.replace(year=now.year + 1, month=1, day=1)
        return midnight.replace(month=now.month + 1, day=1)
    return None
