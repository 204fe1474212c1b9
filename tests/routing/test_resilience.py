"""Fault injection over real HTTP: every target is its own simulator."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import openai
import pytest

from tests.routing.conftest import USER, gateway, simulators, stats


async def _gather_limited(count: int, concurrency: int, make: Any) -> list[Any]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Any:
        async with semaphore:
            return await make(index)

    return await asyncio.gather(*(one(i) for i in range(count)))


async def test_failing_and_hanging_targets_are_invisible_and_cooled_down() -> None:
    models = """
models:
  - name: m
    targets:
      - {provider: p0, model: ok}
      - {provider: p1, model: "bad?status=500"}
      - {provider: p2, model: "slow?hang=1"}
"""
    routing = "routing: {timeout_s: 0.3, retries: 1, cooldown: {after_failures: 3, for_s: 60}}\n"
    async with simulators(3) as sims, gateway(sims, models, routing) as client:
        latencies: list[float] = []

        async def call(_: int) -> str:
            started = time.monotonic()
            raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)  # type: ignore[arg-type]
            latencies.append(time.monotonic() - started)
            return raw.headers["x-lockgate-model"]

        first = await _gather_limited(100, 10, call)
        bad_then, slow_then = (
            (await stats(sims[1]))["total_requests"],
            (await stats(sims[2]))["total_requests"],
        )
        rest = await _gather_limited(400, 10, call)
        answered_by = first + rest
        assert answered_by == ["p0/ok"] * 500  # 100% succeed, all from the healthy target
        assert bad_then <= 3 + 10
        assert slow_then <= 3 + 10
        assert (await stats(sims[1]))["total_requests"] == bad_then  # no traffic while cooled
        assert (await stats(sims[2]))["total_requests"] == slow_then
        latencies.sort()
        assert latencies[int(len(latencies) * 0.99)] < 1.0  # bounded by the 0.3 s timeout


async def test_retry_after_is_honoured_on_a_single_target() -> None:
    models = 'models:\n  - {name: m, targets: [{provider: p0, model: "x?status=429&retry_after=2&fail_times=1&key=ra"}]}\n'
    async with simulators(1) as sims, gateway(sims, models) as client:
        started = time.monotonic()
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert time.monotonic() - started >= 2.0
        assert raw.headers["x-lockgate-attempts"] == "2"


async def test_rate_limited_target_is_skipped_not_retried_sooner() -> None:
    models = """
models:
  - name: m
    strategy: fallback
    targets:
      - {provider: p0, model: "x?status=429&retry_after=2"}
      - {provider: p1, model: ok}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        started = time.monotonic()
        for _ in range(5):
            raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)  # type: ignore[arg-type]
            assert raw.headers["x-lockgate-model"] == "p1/ok"
        assert time.monotonic() - started < 1.5
        assert (await stats(sims[0]))["total_requests"] == 1  # paused for its retry-after


async def test_all_targets_rate_limited_gives_429_with_smallest_retry_after() -> None:
    models = """
models:
  - name: m
    targets:
      - {provider: p0, model: "x?status=429&retry_after=45"}
      - {provider: p1, model: "y?status=429&retry_after=40"}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert info.value.response.headers["retry-after"] == "40"
        assert info.value.body["code"] == "upstream_rate_limited"  # type: ignore[index]
        assert info.value.response.headers["x-lockgate-attempts"] == "2"


async def test_weighted_three_to_one() -> None:
    models = """
models:
  - name: m
    targets: [{provider: p0, model: a, weight: 3}, {provider: p1, model: b, weight: 1}]
"""
    async with simulators(2) as sims, gateway(sims, models) as client:

        async def call(_: int) -> None:
            await client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]

        await _gather_limited(2000, 32, call)
        share = (await stats(sims[0]))["total_requests"] / 2000
        assert (await stats(sims[1]))["total_requests"] + share * 2000 == 2000
        assert 0.75 * 0.95 <= share <= 0.75 * 1.05


async def test_latency_strategy_prefers_the_faster_target() -> None:
    models = """
models:
  - name: m
    strategy: latency
    targets:
      - {provider: p0, model: "slow?latency_ms=40"}
      - {provider: p1, model: fast}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:

        async def call(_: int) -> None:
            await client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]

        await _gather_limited(300, 4, call)
        fast = (await stats(sims[1]))["total_requests"]
        assert fast / 300 > 0.8


async def test_least_busy_spreads_concurrent_load() -> None:
    models = """
models:
  - name: m
    strategy: least-busy
    targets:
      - {provider: p0, model: "a?latency_ms=100"}
      - {provider: p1, model: "b?latency_ms=100"}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:

        async def call(_: int) -> None:
            await client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]

        await _gather_limited(20, 20, call)
        assert (await stats(sims[0]))["total_requests"] == 10
        assert (await stats(sims[1]))["total_requests"] == 10


async def test_cost_strategy_picks_the_cheapest_target() -> None:
    models = """
models:
  - name: m
    strategy: cost
    targets:
      - {provider: p0, model: dear, price: {input: 5, output: 15}}
      - {provider: p1, model: cheap, price: {input: 0.15, output: 0.6}}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert raw.headers["x-lockgate-model"] == "p1/cheap"


async def test_fallback_model_answers_when_every_target_failed() -> None:
    models = """
models:
  - name: primary
    targets: [{provider: p0, model: "x?status=503"}]
    fallbacks: [backup]
  - name: backup
    targets: [{provider: p1, model: ok}]
routing: {retries: 1, backoff_s: 0.01}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        raw = await client.chat.completions.with_raw_response.create(model="primary", messages=USER)  # type: ignore[arg-type]
        assert raw.headers["x-lockgate-model"] == "p1/ok"
        assert raw.headers["x-lockgate-attempts"] == "3"  # 2 rounds on primary, then backup


async def test_client_errors_are_not_retried() -> None:
    models = """
models:
  - name: m
    targets: [{provider: p0, model: "x?status=400"}, {provider: p1, model: ok}]
    strategy: fallback
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert info.value.response.headers["x-lockgate-attempts"] == "1"
        assert (await stats(sims[1]))["total_requests"] == 0


async def test_half_open_probe_closes_the_breaker() -> None:
    models = """
models:
  - name: m
    strategy: fallback
    targets:
      - {provider: p0, model: "x?status=500&fail_times=2&key=probe"}
      - {provider: p1, model: ok}
routing: {retries: 0, cooldown: {after_failures: 2, for_s: 0.5}}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        for _ in range(2):  # two failures open the breaker
            raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)  # type: ignore[arg-type]
            assert raw.headers["x-lockgate-model"] == "p1/ok"
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert raw.headers["x-lockgate-attempts"] == "1"  # p0 skipped while cooling down
        await asyncio.sleep(0.6)
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert raw.headers["x-lockgate-model"] == "p0/x?status=500&fail_times=2&key=probe"


async def test_readyz_shows_target_health() -> None:
    models = """
models:
  - name: m
    strategy: fallback
    targets: [{provider: p0, model: "bad?status=500"}, {provider: p1, model: ok}]
routing: {retries: 0, cooldown: {after_failures: 1, for_s: 60}}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        await client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
        base = str(client.base_url).removesuffix("/v1/")
        async with aiohttp.ClientSession() as http, http.get(f"{base}/readyz") as response:
            targets = (await response.json())["targets"]
        assert targets["p0/bad?status=500"]["state"] == "cooling_down"
        assert targets["p1/ok"]["state"] == "healthy"


async def test_rules_route_by_input_size_and_tags() -> None:
    models = """
models:
  - name: auto
    rules:
      - {if: {tags: {tier: gold}}, model: big}
      - {if: {input_tokens: {lt: 50}}, model: small}
      - {model: big}
  - {name: small, targets: [{provider: p0, model: small}]}
  - {name: big, targets: [{provider: p1, model: big}]}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        short = await client.chat.completions.with_raw_response.create(model="auto", messages=USER)  # type: ignore[arg-type]
        assert short.headers["x-lockgate-model"] == "p0/small"
        long = [{"role": "user", "content": "word " * 200}]
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=long)  # type: ignore[arg-type]
        assert raw.headers["x-lockgate-model"] == "p1/big"
        gold = await client.chat.completions.with_raw_response.create(
            model="auto",
            messages=USER,
            extra_headers={"x-lockgate-tags": "tier=gold, env=ci"},  # type: ignore[arg-type]
        )
        assert gold.headers["x-lockgate-model"] == "p1/big"


async def test_context_window_fallback_and_clear_400() -> None:
    models = """
models:
  - name: m
    strategy: fallback
    targets:
      - {provider: p0, model: small, context_window: 20}
      - {provider: p1, model: large, context_window: 1000}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert raw.headers["x-lockgate-model"] == "p0/small"
        medium = [{"role": "user", "content": "word " * 100}]
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=medium)  # type: ignore[arg-type]
        assert raw.headers["x-lockgate-model"] == "p1/large"
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "w " * 5000}]
            )
        assert info.value.body["code"] == "context_length_exceeded"  # type: ignore[index]


@pytest.mark.parametrize("fault", ["reset=1", "status=500", "error_after=0", "truncate_after=0"])
async def test_stream_failing_before_first_token_falls_back(fault: str) -> None:
    models = f"""
models:
  - name: m
    strategy: fallback
    targets: [{{provider: p0, model: "x?{fault}"}}, {{provider: p1, model: ok}}]
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)  # type: ignore[arg-type]
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert len(text.split()) == 5
        assert (await stats(sims[0]))["total_requests"] == 1


async def test_least_busy_counts_open_streams() -> None:
    models = """
models:
  - name: m
    strategy: least-busy
    targets:
      - {provider: p0, model: "a?tokens=40&tokens_per_s=20"}
      - {provider: p1, model: "b?tokens=40&tokens_per_s=20"}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        streams = []
        for _ in range(10):  # each stays open for ~2 s while the next ones are routed
            stream = await client.chat.completions.create(model="m", messages=USER, stream=True)  # type: ignore[arg-type]
            await stream.__anext__()
            streams.append(stream)
        assert (await stats(sims[0]))["total_requests"] == 5
        assert (await stats(sims[1]))["total_requests"] == 5
        for stream in streams:
            await stream.close()
        base = str(client.base_url).removesuffix("/v1/")
        async with aiohttp.ClientSession() as http:
            for _ in range(20):  # closed streams give their slots back
                async with http.get(f"{base}/readyz") as response:
                    targets = (await response.json())["targets"]
                if all(t["in_flight"] == 0 for t in targets.values()):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"in-flight counts not released: {targets}")


async def test_rules_only_model_without_a_matching_rule_is_a_clear_400() -> None:
    models = """
models:
  - name: auto
    rules: [{if: {stream: true}, model: s}]
  - {name: s, targets: [{provider: p0, model: s}]}
"""
    async with simulators(1) as sims, gateway(sims, models) as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model="auto", messages=USER)  # type: ignore[arg-type]
        assert info.value.body["code"] == "no_matching_rule"  # type: ignore[index]
        assert "auto" in info.value.message
