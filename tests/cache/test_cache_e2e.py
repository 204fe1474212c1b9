"""The exact response cache through a real gateway, with the official SDKs as clients.

A simulator of the module's own counts the upstream calls; its answers carry a random id, so a
hit is the same id again and a miss is a new one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
import pytest

from lockgate.simulate.server import RunningSimulator, start_simulator
from lockgate.simulate.settings import SimulatorSettings
from tests.access.admin_helpers import (
    anthropic_client,
    declared_key_yaml,
    openai_client,
    secret,
    wait_for,
)
from tests.conftest import config_from_yaml, running_gateway
from tests.storage.raw import query


@dataclass
class Setup:
    url: str
    sim: RunningSimulator
    database: str

    async def upstream_calls(self) -> int:
        stats = f"{self.sim.root_url}/sim/stats"
        async with aiohttp.ClientSession() as http, http.get(stats) as answer:
            return int((await answer.json())["total_requests"])

    async def row(self, request_id: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            result = await query(
                self.database, "SELECT * FROM usage WHERE request_id = :id", {"id": request_id}
            )
            rows = [dict(row._mapping) for row in result]
            return rows[0] if rows else None

        found, _ = await wait_for(probe, 10)
        return found


def gateway_yaml(sim: RunningSimulator, database: str, cache: str = "{ttl_s: 60}") -> str:
    return f"""
storage: {{database: "{database}"}}
providers: [{{name: sim, type: openai, base_url: "{sim.base_url}", api_key: sim-key}}]
routing: {{retries: 0, timeout_s: 10}}
cache: {cache}
models:
  - name: m
    targets: [{{provider: sim, model: sim-small}}]
    price: {{input: 1000, output: 2000}}
  - name: fresh
    targets: [{{provider: sim, model: sim-small}}]
    cache_ttl_s: 0
teams: [{{name: red}}, {{name: blue}}]
keys:
{declared_key_yaml("red-1", team="red")}{declared_key_yaml("red-2", team="red")}{declared_key_yaml("blue-1", team="blue")}"""


@pytest.fixture(scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Setup]:
    sim = await start_simulator(SimulatorSettings())
    database = f"sqlite:///{tmp_path_factory.mktemp('cache') / 'cache.db'}"
    try:
        async with running_gateway(config_from_yaml(gateway_yaml(sim, database))) as url:
            yield Setup(url, sim, database)
    finally:
        await sim.close()


def question() -> list[Any]:
    """A prompt no other test sends (the cache is shared by the module)."""
    return [{"role": "user", "content": f"What is {uuid.uuid4().hex}?"}]


async def ask(
    url: str, key: str, messages: list[Any], model: str = "m", **options: Any
) -> tuple[Any, dict[str, str]]:
    async with openai_client(url, secret(key)) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model=model, messages=messages, **options
        )
    return raw.parse(), dict(raw.headers)


async def test_the_same_request_is_answered_once_and_then_from_the_cache(setup: Setup) -> None:
    messages = question()
    before = await setup.upstream_calls()
    first, first_headers = await ask(setup.url, "red-1", messages)
    second, second_headers = await ask(setup.url, "red-1", messages)
    assert first_headers["x-lockgate-cache"] == "miss"
    assert second_headers["x-lockgate-cache"] == "hit"
    assert second.id == first.id
    assert second.choices[0].message.content == first.choices[0].message.content
    assert await setup.upstream_calls() == before + 1
    # The hit costs nothing and says so, in the header and in the ledger.
    assert second_headers["x-lockgate-cost-usd"] == "0.000000"
    miss_row = await setup.row(first_headers["x-request-id"])
    hit_row = await setup.row(second_headers["x-request-id"])
    assert not miss_row["cache_hit"]
    assert miss_row["cost_usd_micros"] > 0
    assert hit_row["cache_hit"]
    assert hit_row["cost_usd_micros"] == 0
    assert hit_row["input_tokens"] == hit_row["output_tokens"] == 0
    assert hit_row["status"] == 200


async def test_a_team_shares_its_cache_and_no_other_team_sees_it(setup: Setup) -> None:
    messages = question()
    first, _ = await ask(setup.url, "red-1", messages)
    same_team, same_headers = await ask(setup.url, "red-2", messages)
    other_team, other_headers = await ask(setup.url, "blue-1", messages)
    assert same_headers["x-lockgate-cache"] == "hit"
    assert same_team.id == first.id
    assert other_headers["x-lockgate-cache"] == "miss"
    assert other_team.id != first.id


async def test_the_key_ignores_user_and_field_order_but_not_sampling(setup: Setup) -> None:
    messages = question()
    first, _ = await ask(setup.url, "red-1", messages, temperature=0.5, user="alice")
    reordered, headers = await ask(setup.url, "red-1", messages, user="bob", temperature=0.5)
    assert headers["x-lockgate-cache"] == "hit"
    assert reordered.id == first.id
    hotter, headers = await ask(setup.url, "red-1", messages, temperature=0.9)
    assert headers["x-lockgate-cache"] == "miss"
    assert hotter.id != first.id


async def test_a_cached_answer_is_replayed_to_a_streaming_client(setup: Setup) -> None:
    messages = question()
    first, _ = await ask(setup.url, "red-1", messages)
    async with openai_client(setup.url, secret("red-1")) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        assert raw.headers["x-lockgate-cache"] == "hit"
        assert raw.headers["content-type"].startswith("text/event-stream")
        chunks = [chunk async for chunk in raw.parse()]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.choices[0].message.content
    assert len([c for c in chunks if c.choices]) > 2  # a real stream, not one blob
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == first.usage.completion_tokens
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]


async def test_a_streamed_answer_is_kept_and_served_to_a_json_client(setup: Setup) -> None:
    messages = question()
    async with openai_client(setup.url, secret("red-1")) as client:
        stream = await client.chat.completions.create(model="m", messages=messages, stream=True)
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await asyncio.sleep(0.05)
    answer, headers = await ask(setup.url, "red-1", messages)
    assert headers["x-lockgate-cache"] == "hit"
    assert answer.choices[0].message.content == streamed
    assert answer.choices[0].finish_reason == "stop"


async def test_no_cache_asks_upstream_and_no_store_keeps_nothing(setup: Setup) -> None:
    messages = question()
    first, _ = await ask(setup.url, "red-1", messages)
    fresh, headers = await ask(
        setup.url, "red-1", messages, extra_headers={"x-lockgate-cache": "no-cache"}
    )
    assert headers["x-lockgate-cache"] == "bypass"
    assert fresh.id != first.id
    # no-cache still kept the fresh answer.
    again, headers = await ask(setup.url, "red-1", messages)
    assert (headers["x-lockgate-cache"], again.id) == ("hit", fresh.id)

    other = question()
    _, headers = await ask(
        setup.url, "red-1", other, extra_headers={"x-lockgate-cache": "no-store"}
    )
    assert headers["x-lockgate-cache"] == "miss"
    _, headers = await ask(setup.url, "red-1", other)
    assert headers["x-lockgate-cache"] == "miss"


async def test_ttl_per_request_and_per_model(setup: Setup) -> None:
    messages = question()
    short = {"x-lockgate-cache-ttl": "0.3"}
    first, _ = await ask(setup.url, "red-1", messages, extra_headers=short)
    _, headers = await ask(setup.url, "red-1", messages)
    assert headers["x-lockgate-cache"] == "hit"
    await asyncio.sleep(0.4)
    later, headers = await ask(setup.url, "red-1", messages)
    assert headers["x-lockgate-cache"] == "miss"
    assert later.id != first.id

    uncached = question()
    await ask(setup.url, "red-1", uncached, model="fresh")
    _, headers = await ask(setup.url, "red-1", uncached, model="fresh")
    assert headers["x-lockgate-cache"] == "bypass"
    # A caller's TTL does not override the operator's "never cache this model".
    ttl = {"x-lockgate-cache-ttl": "60"}
    await ask(setup.url, "red-1", uncached, model="fresh", extra_headers=ttl)
    _, headers = await ask(setup.url, "red-1", uncached, model="fresh", extra_headers=ttl)
    assert headers["x-lockgate-cache"] == "bypass"


async def test_bad_cache_headers_are_refused_by_name(setup: Setup) -> None:
    for header, value in (("x-lockgate-cache", "sometimes"), ("x-lockgate-cache-ttl", "-1")):
        with pytest.raises(openai.BadRequestError) as raised:
            await ask(setup.url, "red-1", question(), extra_headers={header: value})
        assert header in raised.value.message


async def test_failed_and_incomplete_answers_are_not_kept(setup: Setup) -> None:
    failing = question()
    with pytest.raises(openai.InternalServerError):
        await ask(setup.url, "red-1", failing, extra_body={"simulate": {"status": 500}})
    with pytest.raises(openai.InternalServerError):
        await ask(setup.url, "red-1", failing, extra_body={"simulate": {"status": 500}})

    cut = question()
    async with openai_client(setup.url, secret("red-1")) as client:
        stream = await client.chat.completions.create(
            model="m", messages=cut, stream=True, extra_body={"simulate": {"truncate_after": 3}}
        )
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
    _, headers = await ask(setup.url, "red-1", cut, extra_body={"simulate": {"truncate_after": 3}})
    assert headers["x-lockgate-cache"] == "miss"


async def test_anthropic_messages_are_cached_and_replayed_as_events(setup: Setup) -> None:
    messages = question()
    async with anthropic_client(setup.url, secret("red-1")) as client:
        first = await client.messages.with_raw_response.create(
            model="m", max_tokens=64, messages=messages
        )
        assert first.headers["x-lockgate-cache"] == "miss"
        async with client.messages.stream(model="m", max_tokens=64, messages=messages) as stream:
            replayed = await stream.get_final_message()
        second = await client.messages.with_raw_response.create(
            model="m", max_tokens=64, messages=messages
        )
    assert second.headers["x-lockgate-cache"] == "hit"
    original = await first.parse()
    assert (await second.parse()).id == original.id
    assert replayed.id == original.id
    assert replayed.content[0].text == original.content[0].text  # type: ignore[union-attr]
    assert replayed.stop_reason == original.stop_reason
