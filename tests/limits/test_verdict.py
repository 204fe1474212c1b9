"""Header values and messages, independent of the backend."""

from __future__ import annotations

import pytest

from lockgate.limits.buckets import Levels, refill
from lockgate.limits.quotas import Quota
from lockgate.limits.verdict import format_reset, ratelimit_headers, refusal


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "1ms"),
        (0.12, "120ms"),
        (1, "1s"),
        (8.64, "8.64s"),
        (60, "1m0s"),
        (179.56, "2m59.56s"),
        (360, "6m0s"),
        (3600, "1h0m0s"),
        (3723.5, "1h2m3.5s"),
    ],
)
def test_reset_durations_read_like_openais(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_a_bucket_refills_at_its_limit_per_minute_up_to_its_limit() -> None:
    assert refill(None, 600, 0) == 600
    assert refill(0.0, 600, 0.5) == pytest.approx(5)
    assert refill(-100.0, 600, 1) == pytest.approx(-90)
    assert refill(590.0, 600, 60) == 600
    assert refill(5.0, None, 1) is None


def test_headers_follow_the_quota_with_the_fewest_remaining() -> None:
    key = Quota("key:a", "key 'a'", rpm=100, tpm=10_000)
    team = Quota("team:t", "team 't'", rpm=1000, tpm=5000)
    levels = [Levels(40.0, 9000.0, None), Levels(900.0, 100.5, None)]

    headers = dict(ratelimit_headers([key, team], levels))

    assert headers == {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "40",
        "x-ratelimit-reset-requests": "36s",
        "x-ratelimit-limit-tokens": "5000",
        "x-ratelimit-remaining-tokens": "100",
        "x-ratelimit-reset-tokens": "58.794s",
    }


def test_the_message_names_the_limit_waited_on_longest() -> None:
    key = Quota("key:a", "key 'a'", rpm=60)
    team = Quota("team:t", "team 't'", tpm=600)
    levels = [Levels(0.5, None, None), Levels(None, 0.0, None)]

    error = refusal([key, team], levels, 300)

    assert error is not None
    assert error.message == (
        "Rate limit of 600 tokens per minute reached for team 't'; retry after 30s"
    )
    assert error.headers["retry-after"] == "30"


def test_nothing_is_refused_when_everything_fits() -> None:
    quota = Quota("key:a", "key 'a'", rpm=60, tpm=600, parallel=2)
    assert refusal([quota], [Levels(1.0, 300.0, 1)], 300) is None
