"""Rate limits end to end: a real gateway, the official SDKs as clients, the simulator upstream.

Most tests run on both backends: in memory (one process) and in Redis (global), which must
behave the same to a client. Numbers follow the token buckets: a bucket holds the limit and
refills at limit/60 per second, so a burst of `rpm` passes and the next request is refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from tests.access.limits_helpers import (
    USER,
    anthropic_client,
    delete_prefix,
    gateway_config,
    key,
    limit_counters,
    openai_client,
    ratelimit_headers,
    team,
    unique_prefix,
)
from tests.conftest import running_gateway

SIX_HEADERS = {
    f"x-ratelimit-{what}-{dimension}"
    for what in ("limit", "remaining", "reset")
    for dimension in ("requests", "tokens")
}


@pytest.fixture(params=["memory", "redis"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any] | None]:
    """`storage:` of the gateway: default (memory counters) or a Redis of this test's own."""
    if request.param == "memory":
        yield None
        return
    redis_url: str = request.getfixturevalue("redis_server_url")
    prefix = unique_prefix()
    yield {"redis": redis_url, "redis_prefix": prefix}
    await delete_prefix(redis_url, prefix)


async def refused(call: Any) -> openai.RateLimitError:
    """The 429 a call ends with (it must end with one)."""
    with pytest.raises(openai.RateLimitError) as info:
        await call
    return info.value


async def until(predicate: Any, timeout_s: float = 3.0) -> None:
    """Poll an async predicate: settling a request happens just after its response."""
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_key_rpm_burst_is_refused_with_retry_after_and_ratelimit_headers(
    storage: dict[str, Any] | None,
) -> None:
    config = gateway_config(keys=[key("burst", limits={"rpm": 5, "tpm": 100_000})], storage=storage)
    async with running_gateway(config) as url, openai_client(url, "burst") as client:
        remaining = []
        for index in range(5):
            if index == 2:  # a stream carries them in its response headers too
                streamed = await client.chat.completions.with_raw_response.create(
                    model="m", messages=USER, stream=True
                )
                async for _ in streamed.parse():
                    pass
                headers = ratelimit_headers(streamed.headers)
            else:
                raw = await client.chat.completions.with_raw_response.create(
                    model="m", messages=USER
                )
                headers = ratelimit_headers(raw.headers)
            assert set(headers) == SIX_HEADERS  # successes carry them too
            assert headers["x-ratelimit-limit-requests"] == "5"
            assert headers["x-ratelimit-limit-tokens"] == "100000"
            remaining.append(int(headers["x-ratelimit-remaining-requests"]))
            assert int(headers["x-ratelimit-remaining-tokens"]) < 100_000
        assert remaining == [4, 3, 2, 1, 0]

        error = await refused(client.chat.completions.create(model="m", messages=USER))
        assert error.status_code == 429
        assert error.code == "rate_limit_exceeded"
        assert "5 requests per minute" in error.message
        assert "key 'burst'" in error.message
        refusal = error.response.headers
        # One request refills in 12 s; a little of that has passed already.
        assert 10 <= int(refusal["retry-after"]) <= 12
        assert set(ratelimit_headers(refusal)) == SIX_HEADERS
        assert refusal["x-ratelimit-limit-requests"] == "5"
        assert refusal["x-ratelimit-remaining-requests"] == "0"
        assert refusal["x-ratelimit-reset-requests"].endswith("s")
        assert "x-should-retry" not in refusal  # retrying later does help


async def test_a_failed_call_carries_the_ratelimit_headers_too() -> None:
    """An upstream failure after admission still tells the caller where its limits stand."""
    config = gateway_config(keys=[key("failing", limits={"rpm": 5})])
    async with running_gateway(config) as url, openai_client(url, "failing") as client:
        with pytest.raises(openai.InternalServerError) as info:
            await client.chat.completions.create(model="m?status=500", messages=USER)
        error = info.value
        assert error.status_code == 502
        assert error.response.headers["x-ratelimit-limit-requests"] == "5"
        assert error.response.headers["x-ratelimit-remaining-requests"] == "4"


async def test_team_rpm_is_shared_by_the_keys_of_the_team(storage: dict[str, Any] | None) -> None:
    config = gateway_config(
        teams=[team("crew", limits={"rpm": 4})],
        keys=[key("crew-a", team="crew"), key("crew-b", team="crew")],
        storage=storage,
    )
    async with (
        running_gateway(config) as url,
        openai_client(url, "crew-a") as first,
        openai_client(url, "crew-b") as second,
    ):
        remaining = []
        for client in (first, second, first, second):
            raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)
            assert raw.headers["x-ratelimit-limit-requests"] == "4"
            remaining.append(raw.headers["x-ratelimit-remaining-requests"])
        assert remaining == ["3", "2", "1", "0"]  # one counter for both keys
        for client in (first, second):
            error = await refused(client.chat.completions.create(model="m", messages=USER))
            assert error.code == "rate_limit_exceeded"
            assert "team 'crew'" in error.message


async def test_a_per_model_limit_limits_only_the_models_it_matches(
    storage: dict[str, Any] | None,
) -> None:
    limits = {"rpm": 10, "models": {"big-*": {"rpm": 1}}}
    config = gateway_config(keys=[key("picky", limits=limits)], storage=storage)
    async with running_gateway(config) as url, openai_client(url, "picky") as client:
        raw = await client.chat.completions.with_raw_response.create(model="big-one", messages=USER)
        # The tightest quota is reported: the model's (1 per minute, now used).
        assert raw.headers["x-ratelimit-limit-requests"] == "1"
        assert raw.headers["x-ratelimit-remaining-requests"] == "0"

        for model in ("big-one", "big-two"):  # one counter for every model the glob matches
            error = await refused(client.chat.completions.create(model=model, messages=USER))
            assert error.code == "rate_limit_exceeded"
            assert "model 'big-*'" in error.message

        remaining = []
        for _ in range(3):
            raw = await client.chat.completions.with_raw_response.create(
                model="small-one", messages=USER
            )
            assert raw.headers["x-ratelimit-limit-requests"] == "10"
            remaining.append(raw.headers["x-ratelimit-remaining-requests"])
        # The key's own counter: one big request passed, the two refused ones cost nothing.
        assert remaining == ["8", "7", "6"]


async def test_tpm_refuses_a_request_estimated_above_the_remaining_tokens(
    storage: dict[str, Any] | None,
) -> None:
    config = gateway_config(keys=[key("tokens", limits={"tpm": 100})], storage=storage)
    async with running_gateway(config) as url, openai_client(url, "tokens") as client:
        # Estimated 6 input + 60 max_tokens = 66; used 5 + 60 = 65.
        raw = await client.chat.completions.with_raw_response.create(
            model="m?tokens=60", messages=USER, max_tokens=60
        )
        assert raw.parse().usage is not None
        assert raw.parse().usage.total_tokens == 65  # type: ignore[union-attr]
        headers = ratelimit_headers(raw.headers)
        assert set(headers) == {h for h in SIX_HEADERS if h.endswith("tokens")}
        assert headers["x-ratelimit-limit-tokens"] == "100"
        assert headers["x-ratelimit-remaining-tokens"] == "34"

        async def corrected() -> bool:
            return int((await limit_counters(url, "key:tokens"))["remaining_tokens"]) >= 35

        await until(corrected)  # the real count gave one token back

        # 66 more do not fit in the 35 or so left.
        error = await refused(
            client.chat.completions.create(model="m", messages=USER, max_tokens=60)
        )
        assert error.code == "rate_limit_exceeded"
        assert "100 tokens per minute" in error.message
        refusal = error.response.headers
        assert refusal["x-ratelimit-limit-tokens"] == "100"
        assert (
            35 <= int(refusal["x-ratelimit-remaining-tokens"]) <= 40
        )  # refilling at 1.67 a second
        assert 15 <= int(refusal["retry-after"]) <= 19  # (66 - 35) tokens at 100/60 per second

        # A request estimated within what is left passes: the estimate decides, not the count.
        await client.chat.completions.create(model="m", messages=USER, max_tokens=10)

        # Larger than the whole bucket: refused for good, and SDKs are told not to retry.
        error = await refused(
            client.chat.completions.create(model="m", messages=USER, max_tokens=200)
        )
        assert error.code == "rate_limit_exceeded"
        assert "cannot be admitted however long you wait" in error.message
        assert error.response.headers["x-should-retry"] == "false"


async def test_tpm_is_corrected_to_the_real_usage_after_the_call(
    storage: dict[str, Any] | None,
) -> None:
    config = gateway_config(
        keys=[key("greedy", limits={"tpm": 200}), key("streamer", limits={"tpm": 200})],
        storage=storage,
    )
    async with running_gateway(config) as url, openai_client(url, "greedy") as client:
        # Estimated at 6 tokens (no max_tokens), but the answer is 300 tokens long.
        raw = await client.chat.completions.with_raw_response.create(
            model="m?tokens=300", messages=USER
        )
        assert raw.headers["x-ratelimit-remaining-tokens"] == "194"
        assert raw.parse().usage.total_tokens == 305  # type: ignore[union-attr]

        async def in_debt() -> bool:
            return int((await limit_counters(url, "key:greedy"))["remaining_tokens"]) < 0

        await until(in_debt)  # 200 - 305: the bucket owes 105 tokens

        # The same small request fitted by its estimate; after the correction it does not.
        error = await refused(client.chat.completions.create(model="m", messages=USER))
        assert error.code == "rate_limit_exceeded"
        assert "200 tokens per minute" in error.message
        headers = error.response.headers
        assert headers["x-ratelimit-remaining-tokens"] == "0"
        assert 30 <= int(headers["retry-after"]) <= 34  # 111 tokens at 200/60 per second

    # A stream is corrected when it ends, by the chunks it carried when the client did not
    # ask for a usage block.
    async with running_gateway(config) as url, openai_client(url, "streamer") as client:
        streamed = await client.chat.completions.with_raw_response.create(
            model="m?tokens=300", messages=USER, stream=True
        )
        assert streamed.headers["x-ratelimit-remaining-tokens"] == "194"
        chunks = [chunk async for chunk in streamed.parse()]
        assert len(chunks) > 300
        assert all(chunk.usage is None for chunk in chunks)

        async def stream_in_debt() -> bool:
            return int((await limit_counters(url, "key:streamer"))["remaining_tokens"]) < 0

        await until(stream_in_debt)
        error = await refused(client.chat.completions.create(model="m", messages=USER))
        assert "200 tokens per minute" in error.message


async def test_parallel_limit_holds_a_slot_per_request_and_per_stream_until_it_ends(
    storage: dict[str, Any] | None,
) -> None:
    config = gateway_config(keys=[key("busy", limits={"parallel": 2})], storage=storage)
    async with running_gateway(config) as url, openai_client(url, "busy") as client:
        slow = [
            asyncio.ensure_future(
                client.chat.completions.create(model="m?latency_ms=700", messages=USER)
            )
            for _ in range(2)
        ]

        async def two_in_flight() -> bool:
            return bool((await limit_counters(url, "key:busy"))["in_flight"] == 2)

        await until(two_in_flight)
        error = await refused(client.chat.completions.create(model="m", messages=USER))
        assert error.code == "rate_limit_exceeded"
        assert "Limit of 2 parallel requests reached for key 'busy'" in error.message
        assert error.response.headers["retry-after"] == "1"
        assert not any(task.done() for task in slow)  # refused while both were running
        for reply in await asyncio.gather(*slow):
            assert reply.choices[0].message.content
        await client.chat.completions.create(model="m", messages=USER)

        # A stream keeps its slot after its first chunk, until its last one.
        streams = [
            await client.chat.completions.create(
                model="m?tokens=10&tokens_per_s=20", messages=USER, stream=True
            )
            for _ in range(2)
        ]
        for stream in streams:
            first = await stream.__anext__()
            assert first.choices[0].delta.content is not None
        error = await refused(client.chat.completions.create(model="m", messages=USER))
        assert "Limit of 2 parallel requests" in error.message
        for stream in streams:
            async for _ in stream:
                pass
        await client.chat.completions.create(model="m", messages=USER)

        # A stream the client walks away from gives its slot back too (not after the lease).
        abandoned = await client.chat.completions.create(
            model="m?tokens=100&tokens_per_s=10", messages=USER, stream=True
        )
        await abandoned.__anext__()
        assert (await limit_counters(url, "key:busy"))["in_flight"] == 1
        await abandoned.close()

        async def none_in_flight() -> bool:
            return bool((await limit_counters(url, "key:busy"))["in_flight"] == 0)

        await until(none_in_flight)


async def test_the_sdk_retries_a_rate_limit_but_not_an_exhausted_budget() -> None:
    config = gateway_config(
        keys=[
            key("retrier", limits={"rpm": 30}),
            # Every request reserves 4096 output tokens at $1000/M, more than the whole budget.
            key("broke", budget={"usd": 1, "period": "day"}),
        ],
        price=(0, 1000),
    )
    async with running_gateway(config) as url:
        async with openai_client(url, "retrier") as burst:
            await asyncio.gather(
                *(burst.chat.completions.create(model="m", messages=USER) for _ in range(30))
            )

        statuses: list[int] = []
        waits: list[str | None] = []

        async def seen(response: httpx2.Response) -> None:
            statuses.append(response.status_code)
            waits.append(response.headers.get("retry-after"))

        async with openai_client(url, "retrier", max_retries=2, on_response=seen) as client:
            raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)
        # Refused and told to wait for the next request (one per 2 s at 30 rpm), then admitted.
        assert statuses == [429, 200]
        assert waits[0] in {"1", "2"}
        assert raw.retries_taken == 1

        statuses.clear()
        async with openai_client(url, "broke", max_retries=2, on_response=seen) as client:
            started = time.monotonic()
            error = await refused(client.chat.completions.create(model="m", messages=USER))
        assert statuses == [429]  # asked once: x-should-retry: false
        assert time.monotonic() - started < 0.5
        assert error.code == "budget_exceeded"
        assert error.type == "insufficient_quota"
        assert error.response.headers["x-should-retry"] == "false"
        assert "Budget of $1.00 per day for key 'broke'" in error.message


async def test_anthropic_sdk_gets_an_anthropic_shaped_rate_limit_error(
    storage: dict[str, Any] | None,
) -> None:
    config = gateway_config(keys=[key("claude", limits={"rpm": 1})], storage=storage)
    async with running_gateway(config) as url, anthropic_client(url, "claude") as client:
        raw = await client.messages.with_raw_response.create(
            model="claude-sim", max_tokens=50, messages=USER
        )
        assert (await raw.parse()).content
        assert raw.headers["x-ratelimit-limit-requests"] == "1"
        assert raw.headers["x-ratelimit-remaining-requests"] == "0"

        with pytest.raises(anthropic.RateLimitError) as info:
            await client.messages.create(model="claude-sim", max_tokens=50, messages=USER)
        error = info.value
        assert error.status_code == 429
        assert error.body["type"] == "error"  # type: ignore[index]
        assert error.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
        assert "1 requests per minute" in error.body["error"]["message"]  # type: ignore[index]
        assert 1 <= int(error.response.headers["retry-after"]) <= 60
        assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
