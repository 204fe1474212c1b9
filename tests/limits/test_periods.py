"""Budget periods in UTC, ISO weeks included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from lockgate.config.models import BudgetPeriod
from lockgate.limits import period_end, period_id


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "now", "name", "ends"),
    [
        ("day", utc(2026, 11, 27, 15, 30), "2026-11-27", utc(2026, 11, 28)),
        ("day", utc(2026, 12, 31, 23, 59, 59), "2026-12-31", utc(2027, 1, 1)),
        ("week", utc(2026, 11, 27, 15, 30), "2026-W48", utc(2026, 11, 30)),
        ("week", utc(2026, 11, 30), "2026-W49", utc(2026, 12, 7)),
        ("week", utc(2026, 1, 1), "2026-W01", utc(2026, 1, 5)),  # a Thursday
        ("week", utc(2027, 1, 1), "2026-W53", utc(2027, 1, 4)),  # a Friday: last year's week
        ("week", utc(2024, 12, 30), "2025-W01", utc(2025, 1, 6)),  # a Monday: next year's week
        ("week", utc(2021, 1, 3, 23, 59), "2020-W53", utc(2021, 1, 4)),  # a Sunday
        ("month", utc(2026, 11, 27, 15, 30), "2026-11", utc(2026, 12, 1)),
        ("month", utc(2026, 12, 31, 23, 0), "2026-12", utc(2027, 1, 1)),
        ("month", utc(2028, 2, 29), "2028-02", utc(2028, 3, 1)),
        ("total", utc(2026, 11, 27), "total", None),
    ],
)
def test_periods(period: BudgetPeriod, now: datetime, name: str, ends: datetime | None) -> None:
    assert period_id(period, now) == name
    assert period_end(period, now) == ends


def test_other_time_zones_count_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    # Monday 30 November 08:00 in Tokyo is still Sunday 29 November in UTC.
    now = datetime(2026, 11, 30, 8, 0, tzinfo=tokyo)
    assert period_id("day", now) == "2026-11-29"
    assert period_id("week", now) == "2026-W48"
    assert period_end("week", now) == utc(2026, 11, 30)
    # Tuesday 1 December 08:00 in Tokyo is still November in UTC.
    assert period_id("month", datetime(2026, 12, 1, 8, 0, tzinfo=tokyo)) == "2026-11"


def test_naive_times_are_taken_as_utc() -> None:
    assert period_id("day", datetime(2026, 11, 27, 23, 30)) == "2026-11-27"
    assert period_end("day", datetime(2026, 11, 27, 23, 30)) == utc(2026, 11, 28)
