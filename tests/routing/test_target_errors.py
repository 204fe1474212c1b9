"""Errors that belong to one target move the request on; deadlines are not the target's fault."""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import pytest

from tests.routing.conftest import USER, gateway, simulators, stats


@pytest.mark.parametrize("fault", ["status=401", "status=403", "status=408", "status=409"])
async def test_target_specific_failures_move_on_to_the_next_target(fault: str) -> None:
    models = f"""
models:
  - name: m
    strategy: fallback
    targets: [{{provider: p0, model: "x?{fault}"}}, {{provider: p1, model: ok}}]
routing: {{retries: 0}}
"""
    async with simulators(2) as sims, gateway(sims, models) as client:
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert raw.headers["x-lockgate-model"] == "p1/ok"
        assert raw.headers["x-lockgate-attempts"] == "2"


async def test_parameter_one_target_lacks_goes_to_a_target_that_has_it() -> None:
    async with simulators(2) as sims:
        text = f"""
  - {{name: strict, type: groq, base_url: "{sims[0].base_url}", api_key: k}}
models:
  - name: m
    strategy: fallback
    targets: [{{provider: strict, model: a}}, {{provider: p1, model: b}}]
"""
        async with gateway(sims, text) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="m",
                messages=USER,  # type: ignore[arg-type]
                logit_bias={"50256": -100},
            )
            assert raw.headers["x-lockgate-model"] == "p1/b"
            assert (await stats(sims[0]))["total_requests"] == 0  # refused before sending


async def test_running_out_of_deadline_does_not_count_against_the_target() -> None:
    models = """
models:
  - {name: m, targets: [{provider: p0, model: "x?hang=1"}]}
routing: {timeout_s: 10, deadline_s: 0.4, cooldown: {after_failures: 1, for_s: 60}}
"""
    async with simulators(1) as sims, gateway(sims, models) as client:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert info.value.status_code == 504
        assert info.value.body["code"] == "deadline_exceeded"  # type: ignore[index]
        base = str(client.base_url).removesuffix("/v1/")
        async with aiohttp.ClientSession() as http, http.get(f"{base}/readyz") as response:
            health = (await response.json())["targets"]["p0/x?hang=1"]
        assert health["state"] == "healthy"
        assert health["consecutive_failures"] == 0


async def test_deadline_reached_mid_stream_ends_it_with_an_error_event() -> None:
    models = """
models:
  - {name: m, targets: [{provider: p0, model: "x?tokens=50&tokens_per_s=20"}]}
routing: {deadline_s: 0.6}
"""
    async with simulators(1) as sims, gateway(sims, models) as client:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)  # type: ignore[arg-type]
        words = 0
        with pytest.raises(openai.APIError, match="deadline"):
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    words += 1
        assert 3 <= words < 50
        for _ in range(20):  # the upstream call is closed within a second
            if (await stats(sims[0]))["cancelled"] == 1:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the upstream stream was left open after the deadline")
