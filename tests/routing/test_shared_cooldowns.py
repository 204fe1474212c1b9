"""Cooldowns and pauses shared through a real Redis: between gateways, and the bus on its own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import openai
import pytest
import redis.asyncio as redis

from lockgate.config.loader import load_config
from lockgate.config.models import CooldownConfig
from lockgate.routing.health import HealthBook
from lockgate.routing.shared_cooldowns import CooldownEvent, SharedCooldowns
from tests.access.admin_helpers import ADMIN_KEY, Admin
from tests.conftest import running_gateway
from tests.routing.conftest import USER, gateway, providers_yaml, simulators, stats

FAILING = "a?fail_times=2"
A = f"p0/{FAILING}"


@pytest.fixture
async def prefix(redis_server_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (never FLUSHDB)."""
    prefix = f"lgtest-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_server_url)
    async with client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)


@pytest.fixture
async def client(redis_server_url: str) -> AsyncIterator[redis.Redis]:
    async with redis.Redis.from_url(redis_server_url) as client:
        yield client


def models(a_model: str, routing: str, storage: str = "") -> str:
    """Target A first (fallback order), B behind it: a gateway tries A whenever it may."""
    return f"""
models:
  - name: m
    strategy: fallback
    targets:
      - {{provider: p0, model: "{a_model}"}}
      - {{provider: p1, model: b}}
routing: {routing}
{storage}
"""


def storage(url: str, prefix: str) -> str:
    return f'storage: {{redis: "{url}", redis_prefix: "{prefix}"}}'


async def answered_by(client: openai.AsyncOpenAI) -> str:
    raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)  # type: ignore[arg-type]
    return raw.headers["x-lockgate-model"]


async def target_health(client: openai.AsyncOpenAI, label: str) -> dict[str, Any]:
    base = str(client.base_url).removesuffix("/v1/")
    async with aiohttp.ClientSession() as http, http.get(f"{base}/readyz") as response:
        targets: dict[str, dict[str, Any]] = (await response.json())["targets"]
    return targets.get(label, {"state": "unknown", "retry_in_s": 0})


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float) -> float:
    """Seconds until `check()` held; fails the test when it did not within `within_s`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within_s, "did not happen in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def subscribed(client: redis.Redis, prefix: str, count: int) -> None:
    """Wait until `count` processes listen, so none misses what the test does next."""

    async def listening() -> bool:
        [(_, subscribers)] = await client.pubsub_numsub(f"{prefix}cooldowns")
        return int(subscribers) >= count

    await eventually(listening, 5)


async def a_requests(sims: list[Any]) -> int:
    return int((await stats(sims[0]))["total_requests"])


async def test_a_breaker_opened_on_one_gateway_is_honoured_by_another(
    redis_server_url: str, prefix: str, client: redis.Redis
) -> None:
    text = models(FAILING, "{retries: 0, cooldown: {after_failures: 2, for_s: 1}}")
    text += storage(redis_server_url, prefix)
    async with simulators(2) as sims, gateway(sims, text) as one, gateway(sims, text) as two:
        await subscribed(client, prefix, 2)
        assert [await answered_by(one), await answered_by(one)] == ["p1/b", "p1/b"]
        opened = time.monotonic()
        assert await a_requests(sims) == 2  # gateway one's breaker is open now

        async def cooling_on_two() -> bool:
            return bool((await target_health(two, A))["state"] == "cooling_down")

        assert await eventually(cooling_on_two, 0.5) < 0.5
        # Gateway two never saw A fail, yet sends it nothing while the cooldown lasts.
        assert [await answered_by(two) for _ in range(5)] == ["p1/b"] * 5
        assert time.monotonic() - opened < 0.9, "too slow to check within the cooldown"
        assert await a_requests(sims) == 2

        await asyncio.sleep(max(0.0, opened + 1.05 - time.monotonic()))
        # Cooldown over: each gateway sends A a request again (A has recovered meanwhile).
        assert await answered_by(two) == A
        assert await answered_by(one) == A
        assert await a_requests(sims) == 4
        assert (await target_health(two, A))["state"] == "healthy"


@pytest.mark.parametrize(
    ("retry_after", "state"), [(20, "healthy"), (90, "cooling_down")], ids=["pause", "cooldown"]
)
async def test_a_long_retry_after_on_one_gateway_pauses_the_target_on_another(
    redis_server_url: str, prefix: str, client: redis.Redis, retry_after: int, state: str
) -> None:
    # Up to max_retry_after_s (30 s) the target is paused; beyond it, cooled down.
    a_model = f"a?status=429&retry_after={retry_after}"
    text = models(a_model, "{retries: 0}", storage(redis_server_url, prefix))
    async with simulators(2) as sims, gateway(sims, text) as one, gateway(sims, text) as two:
        await subscribed(client, prefix, 2)
        assert await answered_by(one) == "p1/b"
        assert await a_requests(sims) == 1

        async def paused_on_two() -> bool:
            return float((await target_health(two, f"p0/{a_model}"))["retry_in_s"]) > 10

        await eventually(paused_on_two, 0.5)
        assert (await target_health(two, f"p0/{a_model}"))["state"] == state
        assert [await answered_by(two) for _ in range(5)] == ["p1/b"] * 5
        assert await a_requests(sims) == 1
        ttl_ms = await client.pttl(f"{prefix}cooldown:p0/{a_model}")
        assert (retry_after - 2) * 1000 < ttl_ms <= retry_after * 1000  # expires when it ends


async def test_a_gateway_started_during_a_cooldown_learns_it_from_redis(
    redis_server_url: str, prefix: str
) -> None:
    text = models("a?status=500", "{retries: 0, cooldown: {after_failures: 2, for_s: 30}}")
    text += storage(redis_server_url, prefix)
    async with simulators(2) as sims:
        async with gateway(sims, text) as one:
            assert [await answered_by(one), await answered_by(one)] == ["p1/b", "p1/b"]
        assert await a_requests(sims) == 2
        async with gateway(sims, text) as late:  # started after the cooldown began
            health = await target_health(late, "p0/a?status=500")
            assert health["state"] == "cooling_down"
            assert 25 < health["retry_in_s"] <= 30
            assert [await answered_by(late) for _ in range(5)] == ["p1/b"] * 5
            assert await a_requests(sims) == 2


async def test_a_config_reload_keeps_the_shared_cooldowns(
    redis_server_url: str, prefix: str, client: redis.Redis, tmp_path: Path
) -> None:
    """The reloaded config's new book learns the stored cooldowns and gets later changes."""
    path = tmp_path / "lockgate.yaml"
    async with simulators(2) as sims:
        path.write_text(
            f'server: {{admin_key: "{ADMIN_KEY}"}}\n'
            + providers_yaml(sims)
            + models("a?status=500", "{retries: 0, cooldown: {after_failures: 2, for_s: 30}}")
            + f'storage: {{redis: "{redis_server_url}", redis_prefix: "{prefix}", '
            f'database: "sqlite:///{tmp_path}/lockgate.db"}}\n'
        )
        async with (
            running_gateway(load_config(path), source=path) as url,
            openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=ADMIN_KEY, max_retries=0) as one,
        ):
            await subscribed(client, prefix, 1)
            assert [await answered_by(one), await answered_by(one)] == ["p1/b", "p1/b"]
            assert await Admin(url).ok("POST", "/admin/config/reload") == {
                "status": "reloaded",
                "errors": [],
            }
            assert (await target_health(one, "p0/a?status=500"))["state"] == "cooling_down"
            assert await answered_by(one) == "p1/b"
            assert await a_requests(sims) == 2

            now = time.time()  # another instance cools B down: the new book hears of it
            event = CooldownEvent("p1/b", "cooldown", now + 30, now, "elsewhere")
            await client.publish(f"{prefix}cooldowns", msgspec.json.encode(event))

            async def b_cooling() -> bool:
                return bool((await target_health(one, "p1/b"))["state"] == "cooling_down")

            await eventually(b_cooling, 2)


async def test_without_redis_each_gateway_keeps_its_own_cooldowns() -> None:
    text = models("a?status=500", "{retries: 0, cooldown: {after_failures: 2, for_s: 30}}")
    async with simulators(2) as sims, gateway(sims, text) as one, gateway(sims, text) as two:
        assert [await answered_by(one), await answered_by(one)] == ["p1/b", "p1/b"]
        assert (await target_health(one, "p0/a?status=500"))["state"] == "cooling_down"
        await asyncio.sleep(0.5)
        assert (await target_health(two, "p0/a?status=500"))["state"] == "unknown"
        assert await answered_by(two) == "p1/b"
        assert await a_requests(sims) == 3  # gateway two still tried A


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_remote_times_are_turned_into_the_books_monotonic_clock(
    client: redis.Redis, prefix: str
) -> None:
    wall, monotonic = FakeClock(1_700_000_000.0), FakeClock(500.0)
    bus = SharedCooldowns(client, prefix, wall=wall)
    book = HealthBook(CooldownConfig(after_failures=1, for_s=60), clock=monotonic)
    await bus.attach(book)

    def remote(kind: str, label: str, ends: float, at: float) -> bytes:
        return msgspec.json.encode(CooldownEvent(label, kind, ends, at, origin="elsewhere"))  # type: ignore[arg-type]

    bus.receive(remote("cooldown", "p/x", ends=wall.now + 10, at=wall.now - 2))
    assert book.get("p/x").open_until == 510.0
    assert book.get("p/x").opened_at == 498.0
    bus.receive(remote("pause", "p/y", ends=wall.now + 5, at=wall.now))
    assert book.get("p/y").paused_until == 505.0
    assert not book.available("p/x")
    assert not book.available("p/y")
    bus.receive(remote("cooldown", "p/old", ends=wall.now - 1, at=wall.now - 31))
    assert book.available("p/old")  # already over

    wall.now += 11
    monotonic.now += 11  # the remote cooldown is over: one probe, as after a local one
    assert book.available("p/x")
    book.start("p/x")
    assert not book.available("p/x")

    # A close from before the breaker opened (at wall.now - 13) does not close it.
    bus.receive(remote("closed", "p/x", ends=wall.now - 14, at=wall.now - 14))
    assert not book.available("p/x")
    bus.receive(remote("closed", "p/x", ends=wall.now, at=wall.now))
    assert book.available("p/x")

    # Own changes go out on the wall clock: ends = now + for_s, stored with that TTL.
    book.start("p/z")
    book.failed("p/z")
    key = bus.key("p/z")

    async def stored() -> bool:
        return bool(await client.exists(key))

    await eventually(stored, 2)
    value = await client.get(key)
    assert value is not None
    event = msgspec.json.decode(value, type=CooldownEvent)
    assert (event.kind, event.ends, event.at, event.origin) == (
        "cooldown",
        wall.now + 60,
        wall.now,
        bus.origin,
    )
    assert 59_000 < await client.pttl(key) <= 60_000
    await bus.close()


async def heard(pubsub: Any, for_s: float) -> list[bytes]:
    """The messages published on `pubsub`'s channel in the next `for_s` seconds."""
    messages = []
    until = time.monotonic() + for_s
    while (left := until - time.monotonic()) > 0:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is not None:
            messages.append(message["data"])
    return messages


async def test_applying_a_remote_change_does_not_publish_it_again(
    client: redis.Redis, prefix: str
) -> None:
    bus = SharedCooldowns(client, prefix)
    book = HealthBook(CooldownConfig(after_failures=1, for_s=60))
    await bus.attach(book)
    bus.start()
    watcher = client.pubsub()
    await watcher.subscribe(bus.channel)
    await subscribed(client, prefix, 2)
    now = time.time()
    sent = msgspec.json.encode(CooldownEvent("p/x", "cooldown", now + 30, now, "elsewhere"))
    await client.publish(bus.channel, sent)

    async def applied() -> bool:
        return not book.available("p/x")

    await eventually(applied, 2)
    assert await heard(watcher, 0.5) == [sent]  # nothing came back from the bus
    assert not await client.exists(bus.key("p/x"))  # nor did it store the remote change

    # Its own messages come back to it over the channel; it ignores them.
    book.start("p/own")
    book.failed("p/own")
    [published] = await heard(watcher, 0.5)
    own = msgspec.json.decode(published, type=CooldownEvent)
    assert (own.label, own.origin) == ("p/own", bus.origin)
    now = time.time()
    for label, origin in (("p/mine", bus.origin), ("p/later", "elsewhere")):
        event = CooldownEvent(label, "cooldown", now + 30, now, origin)
        await client.publish(bus.channel, msgspec.json.encode(event))

    async def later_applied() -> bool:
        return not book.available("p/later")

    await eventually(later_applied, 2)  # so the one before it was read too, and ignored
    assert "p/mine" not in book.snapshot()
    await watcher.aclose()  # type: ignore[no-untyped-call]
    await bus.close()


async def test_a_probe_that_succeeds_closes_the_breaker_everywhere(
    client: redis.Redis, prefix: str
) -> None:
    here = FakeClock(time.monotonic())
    buses = [SharedCooldowns(client, prefix), SharedCooldowns(client, prefix)]
    books = [
        HealthBook(CooldownConfig(after_failures=1, for_s=5), clock=here),
        HealthBook(CooldownConfig(after_failures=1, for_s=60)),
    ]
    for bus, book in zip(buses, books, strict=True):
        await bus.attach(book)
        bus.start()
    await subscribed(client, prefix, 2)

    books[0].start("p/x")
    books[0].failed("p/x")  # opens for 5 s here and, through Redis, there

    async def skipped_there() -> bool:
        return not books[1].available("p/x")

    await eventually(skipped_there, 2)
    assert await client.exists(buses[0].key("p/x"))

    here.now += 5.5  # the first book's cooldown is over; the other still skips for ~5 s
    books[0].start("p/x")
    books[0].succeeded("p/x", 0.1)

    async def open_there() -> bool:
        return books[1].available("p/x")

    await eventually(open_there, 2)
    assert not await client.exists(buses[0].key("p/x"))  # a new instance won't learn it either
    for bus in buses:
        await bus.close()
