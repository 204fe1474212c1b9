"""Rate limits, the same behaviour from both backends."""

from __future__ import annotations

import asyncio
import re

import pytest

from lockgate.errors import RateLimited
from lockgate.limits import Grant, Quota, RateLimiter
from tests.limits.conftest import Rig

KEY = "key 'ci-bot'"


def quota(**limits: int) -> Quota:
    return Quota("key:ci-bot", KEY, **limits)


def headers(grant: Grant) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in grant.headers}


def refilled(rig: Rig, value: int | None, expected: int, slack: int = 10) -> bool:
    """Exact on the fake clock; in Redis real time passes, so a little refill is allowed."""
    assert value is not None
    return value == expected if rig.exact else expected <= value <= expected + slack


async def test_rpm_burst_then_429_with_headers(rig: Rig) -> None:
    limiter = rig.limiter()
    first = await limiter.acquire([quota(rpm=60)], 0)
    assert headers(first)["x-ratelimit-limit-requests"] == "60"
    assert headers(first)["x-ratelimit-remaining-requests"] == "59"
    assert re.fullmatch(r"1s|\d+ms", headers(first)["x-ratelimit-reset-requests"])
    assert not any(name.endswith("-tokens") for name in headers(first))
    for _ in range(59):
        await limiter.acquire([quota(rpm=60)], 0)

    with pytest.raises(RateLimited) as refused:
        await limiter.acquire([quota(rpm=60)], 0)

    error = refused.value
    assert error.status == 429
    assert error.code == "rate_limit_exceeded"
    assert re.fullmatch(
        r"Rate limit of 60 requests per minute reached for key 'ci-bot'; retry after (0\.\d|1\.0)s",
        error.message,
    )
    assert error.headers["retry-after"] == "1"
    assert error.headers["x-ratelimit-limit-requests"] == "60"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    reset = error.headers["x-ratelimit-reset-requests"]
    if rig.exact:
        assert error.message.endswith("retry after 1.0s")
        assert reset == "1m0s"
    else:
        assert re.fullmatch(r"1m0s|59(\.\d+)?s", reset)
    assert "x-ratelimit-limit-tokens" not in error.headers


async def take_all(limiter: RateLimiter, quota: Quota, most: int = 10) -> tuple[int, str]:
    """Acquire until refused: (how many were granted, the refusal's message)."""
    for granted in range(most + 1):
        try:
            await limiter.acquire([quota], 0)
        except RateLimited as refused:
            return granted, refused.message
    raise AssertionError(f"more than {most} granted")


async def test_requests_refill_continuously(rig: Rig) -> None:
    limiter = rig.limiter()
    ten_per_second = quota(rpm=600)
    await asyncio.gather(*(limiter.acquire([ten_per_second], 0) for _ in range(600)))
    late, message = await take_all(limiter, ten_per_second)
    assert late == 0 if rig.exact else late <= 3  # Redis: the burst took real time
    assert message.endswith("retry after 0.1s")

    await rig.wait(0.25)

    granted, _ = await take_all(limiter, ten_per_second)
    assert granted == 2 if rig.exact else 2 <= granted <= 4


async def test_tokens_are_estimated_then_corrected(rig: Rig) -> None:
    limiter = rig.limiter()
    tokens = quota(tpm=1000)
    grant = await limiter.acquire([tokens], 600)
    assert headers(grant)["x-ratelimit-remaining-tokens"] == "400"
    assert "x-ratelimit-limit-requests" not in headers(grant)

    await limiter.settle(grant, 100)  # used less than estimated: 500 come back

    [after] = await limiter.snapshot([tokens])
    assert refilled(rig, after["remaining_tokens"], 900)
    grant = await limiter.acquire([tokens], 900)
    await limiter.settle(grant, 900)


async def test_usage_beyond_the_estimate_blocks_later_requests(rig: Rig) -> None:
    limiter = rig.limiter()
    tokens = quota(tpm=1000)
    grant = await limiter.acquire([tokens], 1000)
    await limiter.settle(grant, 1500)  # 500 more than the bucket held

    [after] = await limiter.snapshot([tokens])
    assert refilled(rig, after["remaining_tokens"], -500, slack=20)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire([tokens], 0)
    assert re.fullmatch(
        r"Rate limit of 1000 tokens per minute reached for key 'ci-bot'; retry after (29|30)s",
        refused.value.message,
    )
    assert refused.value.headers["x-ratelimit-remaining-tokens"] == "0"
    assert refused.value.headers["retry-after"] in {"29", "30"}
    if rig.exact:
        assert refused.value.headers["retry-after"] == "30"
        assert refused.value.headers["x-ratelimit-reset-tokens"] == "1m30s"


async def test_request_larger_than_the_token_limit_can_never_pass(rig: Rig) -> None:
    limiter = rig.limiter()
    tokens = quota(rpm=10, tpm=1000)

    with pytest.raises(RateLimited) as refused:
        await limiter.acquire([tokens], 1001)

    error = refused.value
    assert error.status == 429
    assert error.message.startswith(
        "Request of about 1001 tokens is larger than the rate limit of 1000 tokens per minute "
        "for key 'ci-bot'"
    )
    assert "retry-after" not in error.headers
    assert error.headers["x-should-retry"] == "false"
    assert not error.retryable
    [after] = await limiter.snapshot([tokens])
    assert after["remaining_requests"] == 10
    assert after["remaining_tokens"] == 1000


async def test_parallel_slots_are_freed_once(rig: Rig) -> None:
    limiter = rig.limiter()
    two = quota(parallel=2)
    first = await limiter.acquire([two], 0)
    second = await limiter.acquire([two], 0)
    assert first.headers == []  # no x-ratelimit pair for parallel limits
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire([two], 0)
    assert refused.value.message == (
        "Limit of 2 parallel requests reached for key 'ci-bot'; retry when one of them has finished"
    )
    assert refused.value.headers["retry-after"] == "1"

    await limiter.settle(first, 0)
    await limiter.settle(first, 0)  # a second settle frees nothing more
    [after] = await limiter.snapshot([two])
    assert after["in_flight"] == 1
    third = await limiter.acquire([two], 0)
    with pytest.raises(RateLimited):
        await limiter.acquire([two], 0)

    await limiter.settle(second, 0)
    await limiter.settle(third, 0)
    [after] = await limiter.snapshot([two])
    assert after["in_flight"] == 0


async def test_a_second_settle_does_not_correct_tokens_again(rig: Rig) -> None:
    limiter = rig.limiter()
    tokens = quota(tpm=1000)
    grant = await limiter.acquire([tokens], 100)
    await limiter.settle(grant, 500)
    await limiter.settle(grant, 500)
    [after] = await limiter.snapshot([tokens])
    assert refilled(rig, after["remaining_tokens"], 500)


async def test_one_refusing_quota_charges_none(rig: Rig) -> None:
    limiter = rig.limiter()
    key = quota(rpm=10, tpm=10_000)
    team = Quota("team:platform", "team 'platform'", rpm=3, tpm=1000)
    for _ in range(3):
        grant = await limiter.acquire([key, team], 100)
    hints = headers(grant)
    assert hints["x-ratelimit-limit-requests"] == "3"  # the team's is the tighter limit
    assert hints["x-ratelimit-remaining-requests"] == "0"
    assert hints["x-ratelimit-limit-tokens"] == "1000"
    assert hints["x-ratelimit-remaining-tokens"] == "700"

    with pytest.raises(RateLimited, match="requests per minute reached for team 'platform'"):
        await limiter.acquire([key, team], 100)

    key_state, team_state = await limiter.snapshot([key, team])
    assert key_state["remaining_requests"] == 7
    assert refilled(rig, key_state["remaining_tokens"], 9700)
    assert team_state["remaining_requests"] == 0


async def test_leases_of_a_lost_grant_expire(rig: Rig) -> None:
    limiter = rig.limiter(lease_s=0.2)
    one = quota(parallel=1)
    await limiter.acquire([one], 0)  # never settled, as if its worker crashed
    with pytest.raises(RateLimited):
        await limiter.acquire([one], 0)

    await rig.wait(0.3)

    grant = await limiter.acquire([one], 0)
    [after] = await limiter.snapshot([one])
    assert after["in_flight"] == 1
    await limiter.settle(grant, 0)


async def test_unlimited_quotas_are_free(rig: Rig) -> None:
    limiter = rig.limiter()
    grant = await limiter.acquire([Quota("key:open", "key 'open'")], 10**9)
    assert grant.quotas == ()
    assert grant.headers == []
    await limiter.settle(grant, 10**9)


async def test_snapshot_reports_every_counter(rig: Rig) -> None:
    limiter = rig.limiter()
    full = quota(rpm=60, tpm=1000, parallel=4)
    grant = await limiter.acquire([full], 250)

    [snapshot] = await limiter.snapshot([full])

    assert snapshot["key"] == "key:ci-bot"
    assert snapshot["label"] == KEY
    assert (snapshot["rpm"], snapshot["tpm"], snapshot["parallel"]) == (60, 1000, 4)
    assert snapshot["remaining_requests"] == 59
    assert refilled(rig, snapshot["remaining_tokens"], 750)
    assert snapshot["in_flight"] == 1
    await limiter.settle(grant, 250)
    await limiter.close()


async def test_concurrent_acquires_grant_exactly_the_limit(rig: Rig) -> None:
    limiter = rig.limiter()
    hundred = quota(rpm=100)
    results = await asyncio.gather(
        *(limiter.acquire([hundred], 0) for _ in range(300)), return_exceptions=True
    )
    granted = sum(isinstance(result, Grant) for result in results)
    refused = sum(isinstance(result, RateLimited) for result in results)
    assert granted + refused == 300
    if rig.exact:
        assert granted == 100
    else:
        assert 100 <= granted <= 102
