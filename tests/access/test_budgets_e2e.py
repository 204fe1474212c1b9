"""Budgets end to end, on a SQLite file and on PostgreSQL (and counted in Redis over SQLite):
reservations under concurrency, the spend that reaches the database, persistence across
restarts, alerts and the admin view.

Every request here costs a known amount. The model costs $10 per million input tokens and $100
per million output tokens, i.e. 10 and 100 micro-USD a token; a request says "hello" (estimated
at 6 input tokens, reported as 5) with `max_tokens` 100 and a reply of exactly 100 tokens:

    reserved: ceil(6 * 1.25) = 8 input tokens * 10 + 100 output tokens * 100 = 10_080 micro-USD
    real:     5 input tokens * 10                  + 100 output tokens * 100 = 10_050 micro-USD

so a budget of N * 10_080 micro-USD admits exactly N requests at once, and after they settle the
30 micro-USD each one gave back are not enough for another.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web

from lockgate.config.models import GatewayConfig
from lockgate.limits import period_id
from lockgate.storage import Database
from tests.access.limits_helpers import (
    USER,
    admin_get,
    delete_prefix,
    gateway_config,
    key,
    openai_client,
    secret,
    team,
    unique_name,
    unique_prefix,
)
from tests.conftest import free_port, running_gateway

PRICE = (10.0, 100.0)
RESERVED_MICROS = 10_080
REAL_MICROS = 10_050
MODEL = "m?tokens=100"


@pytest.fixture(params=["sqlite", "postgresql", "sqlite+redis"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """`storage:` with a SQLite file of this test's own, or the run's PostgreSQL database
    (shared by the tests: each one's team has a name of its own); budgets are counted in
    memory, or in Redis under a prefix of this test's own with spend still in SQLite."""
    if request.param == "postgresql":
        yield {"database": request.getfixturevalue("postgres_server_url")}
        return
    database = f"sqlite:///{tmp_path / 'budgets.db'}"
    if request.param == "sqlite":
        yield {"database": database}
        return
    redis_url: str = request.getfixturevalue("redis_server_url")
    prefix = unique_prefix()
    yield {"database": database, "redis": redis_url, "redis_prefix": prefix}
    await delete_prefix(redis_url, prefix)


def budget_config(
    storage: dict[str, Any],
    team_name: str,
    usd: float,
    alert_at: list[float] | None = None,
    alert_urls: tuple[str, ...] = (),
) -> tuple[GatewayConfig, str]:
    """A team with a monthly budget of `usd` and one key in it; (config, key name)."""
    key_name = f"{team_name}-key"
    budget: dict[str, Any] = {"usd": usd, "period": "month"}
    if alert_at is not None:
        budget["alert_at"] = alert_at
    config = gateway_config(
        teams=[team(team_name, budget=budget)],
        keys=[key(key_name, team=team_name)],
        price=PRICE,
        storage=storage,
        alerts=alert_urls,
    )
    return config, key_name


async def chat(http: aiohttp.ClientSession, url: str, key_name: str) -> tuple[int, Any, Any]:
    """One chat request: (status, JSON body, headers)."""
    async with http.post(
        f"{url}/v1/chat/completions",
        json={"model": MODEL, "messages": USER, "max_tokens": 100},
        headers={"authorization": f"Bearer {secret(key_name)}"},
    ) as response:
        return response.status, await response.json(), response.headers


async def stored_spend(database_url: str, scope: str) -> int:
    async with await Database.open(database_url) as db:
        return await db.spend.get_spend(scope, period_id("month", datetime.now(UTC)))


async def test_concurrent_requests_spend_at_most_the_budget_and_it_persists(
    storage: dict[str, Any],
) -> None:
    database_url = storage["database"]
    name = unique_name("spenders")
    scope = f"team:{name}"
    budget_micros = 100 * RESERVED_MICROS
    config, key_name = budget_config(storage, name, budget_micros / 1_000_000)

    async with (
        running_gateway(config) as url,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        replies = await asyncio.gather(*(chat(http, url, key_name) for _ in range(200)))
        admitted = [headers for status, _, headers in replies if status == 200]
        refused = [(body, headers) for status, body, headers in replies if status != 200]
        assert len(admitted) == 100  # exactly as many as the budget holds reservations for
        assert len(refused) == 100
        for body, headers in refused:
            assert body["error"]["code"] == "budget_exceeded"
            assert body["error"]["type"] == "insufficient_quota"
            message = body["error"]["message"]
            assert f"Budget of $1.008 per month for team '{name}'" in message
            assert headers["x-should-retry"] == "false"
            assert "retry-after" not in headers
        costs = [Decimal(headers["x-lockgate-cost-usd"]) for headers in admitted]
        assert set(costs) == {Decimal(REAL_MICROS) / 1_000_000}
        spent_micros = int(sum(costs) * 1_000_000)
        assert spent_micros == 100 * REAL_MICROS <= budget_micros

        # The admin view: the settled spend, nothing held once every request settled.
        deadline = time.monotonic() + 3
        while True:
            budgets = {entry["scope"]: entry for entry in await admin_get(url, "/admin/budgets")}
            status = budgets[scope]
            if status["reserved_usd"] == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert status["reserved_usd"] == 0
        assert status["spent_usd"] == pytest.approx(spent_micros / 1_000_000)
        assert status["budget_usd"] == pytest.approx(budget_micros / 1_000_000)
        assert status["period"] == "month"
        assert status["period_id"] == period_id("month", datetime.now(UTC))

    # Shut down: the spend is in the database, to the micro-dollar.
    assert await stored_spend(database_url, scope) == spent_micros

    async with running_gateway(config) as url, aiohttp.ClientSession() as http:
        status_code, body, headers = await chat(http, url, key_name)
        assert status_code == 429
        assert body["error"]["code"] == "budget_exceeded"
        assert "$1.005 used" in body["error"]["message"]  # the spend read back from the database
        assert headers["x-should-retry"] == "false"
    assert await stored_spend(database_url, scope) == spent_micros


@dataclass
class Webhook:
    """A local alert receiver: its URL, the JSON bodies POSTed to it, and an event set by the
    first one."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    port = free_port()
    receiver = Webhook(f"http://127.0.0.1:{port}/hook")

    async def hook(request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        receiver.received.append(await request.json())
        receiver.arrived.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


async def test_an_alert_threshold_is_announced_once_per_period(
    storage: dict[str, Any],
    webhook: Webhook,
    caplog: pytest.LogCaptureFixture,
) -> None:
    received = webhook.received
    name = unique_name("alerted")
    budget_micros = 10 * RESERVED_MICROS  # 10 requests; half of it is crossed by the 6th
    config, key_name = budget_config(
        storage, name, budget_micros / 1_000_000, alert_at=[0.5], alert_urls=(webhook.url,)
    )

    async with running_gateway(config) as url, aiohttp.ClientSession() as http:
        for count in range(1, 9):
            status, _, _ = await chat(http, url, key_name)
            assert status == 200
            if count == 5:
                await asyncio.sleep(0.3)
                assert received == []  # 5 * 10_050 is still below 50_400
        await asyncio.wait_for(webhook.arrived.wait(), 3)
        await asyncio.sleep(0.3)  # room for a wrong second alert to arrive
    assert len(received) == 1
    alert = received[0]
    assert alert["event"] == "budget_threshold"
    assert alert["threshold"] == 0.5
    assert alert["scope"] == f"team:{name}"
    assert alert["period"] == period_id("month", datetime.now(UTC))
    assert alert["spent_usd"] == pytest.approx(6 * REAL_MICROS / 1_000_000)
    assert alert["budget_usd"] == pytest.approx(budget_micros / 1_000_000)
    assert isinstance(alert["text"], str)
    assert f"team '{name}'" in alert["text"]
    assert "50%" in alert["text"]
    logged = [r for r in caplog.records if r.name == "lockgate.alerts" and name in r.getMessage()]
    assert len(logged) == 1
    assert "50%" in logged[0].getMessage()

    # A restarted gateway reads the spend back and knows the threshold is behind it.
    async with running_gateway(config) as url, aiohttp.ClientSession() as http:
        for _ in range(2):
            status, _, _ = await chat(http, url, key_name)
            assert status == 200
        status, body, _ = await chat(http, url, key_name)
        assert status == 429
        assert body["error"]["code"] == "budget_exceeded"
        await asyncio.sleep(0.3)
    assert len(received) == 1
    assert await stored_spend(storage["database"], f"team:{name}") == 10 * REAL_MICROS


async def test_the_reservation_is_the_largest_possible_cost_at_the_dearest_target() -> None:
    """No max_tokens: 4096 output tokens are reserved, at the highest price of every target
    the request may reach (fallbacks included), though the cheap first target serves it."""
    models = [
        {
            "name": "blend",
            "strategy": "fallback",
            "targets": [
                {
                    "provider": "sim",
                    "model": "cheap?tokens=1",
                    "price": {"input": 0, "output": 100},
                },
                {"provider": "sim", "model": "mid", "price": {"input": 0, "output": 500}},
            ],
            "fallbacks": ["dear"],
        },
        {
            "name": "dear",
            "targets": [{"provider": "sim", "model": "dear"}],
            "price": {"input": 0, "output": 1000},
        },
    ]
    # 4096 tokens at $1000 per million: $4.096, the whole budget.
    config = gateway_config(
        keys=[key("reserver", budget={"usd": 4.096, "period": "day"})], models=models
    )
    async with running_gateway(config) as url, openai_client(url, "reserver") as client:
        raw = await client.chat.completions.with_raw_response.create(model="blend", messages=USER)
        assert raw.headers["x-lockgate-model"] == "sim/cheap?tokens=1"
        assert raw.headers["x-lockgate-cost-usd"] == "0.000100"  # 1 token at $100 per million

        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="blend", messages=USER)
        assert info.value.code == "budget_exceeded"
        assert "($0.0001 used, $4.096 estimated for this request)" in info.value.message

        # With max_tokens the reservation is that many tokens: 10 at $1000 per million.
        raw = await client.chat.completions.with_raw_response.create(
            model="blend", messages=USER, max_tokens=10
        )
        assert raw.headers["x-lockgate-cost-usd"] == "0.000100"


async def test_a_failed_call_gives_its_reservation_back() -> None:
    config = gateway_config(
        keys=[key("unlucky", budget={"usd": RESERVED_MICROS / 1_000_000, "period": "day"})],
        price=PRICE,
    )
    async with running_gateway(config) as url, openai_client(url, "unlucky") as client:
        # The budget holds one reservation; the upstream refuses this call, so it costs nothing.
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(
                model="m?status=400", messages=USER, max_tokens=100
            )
        raw = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=USER, max_tokens=100
        )
        assert raw.headers["x-lockgate-cost-usd"] == "0.010050"
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model=MODEL, messages=USER, max_tokens=100)
        assert info.value.code == "budget_exceeded"
        (status,) = await admin_get(url, "/admin/budgets")
        assert status["scope"] == "key:unlucky"
        assert status["spent_usd"] == pytest.approx(REAL_MICROS / 1_000_000)
