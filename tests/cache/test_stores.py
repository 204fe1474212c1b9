"""The cache's stores and keys: LRU by bytes, expiry, Redis sharing and failing open."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
import redis.asyncio as redis

from lockgate.auth.policy import UNRESTRICTED, Principal
from lockgate.cache.key import cache_key, cache_scope
from lockgate.cache.redis_store import RedisStore
from lockgate.cache.stores import ENTRY_OVERHEAD, MemoryStore

BASE = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}


def test_key_ignores_field_order_user_and_stream_but_not_content() -> None:
    key = cache_key("openai", "team:a", BASE)
    reordered = {"temperature": 0.2, "messages": BASE["messages"], "model": "m"}
    assert cache_key("openai", "team:a", reordered) == key
    noisy = {**BASE, "user": "u1", "stream": True, "stream_options": {"include_usage": True}}
    assert cache_key("openai", "team:a", noisy) == key
    assert cache_key("openai", "team:a", {**BASE, "temperature": 0.3}) != key
    assert cache_key("openai", "team:a", {**BASE, "tools": [{"type": "function"}]}) != key
    assert cache_key("openai", "team:b", BASE) != key
    assert cache_key("anthropic", "team:a", BASE) != key


def test_scope_is_the_team_else_the_caller() -> None:
    assert cache_scope(Principal("key", "k1", "red", UNRESTRICTED)) == "team:red"
    assert cache_scope(Principal("key", "k1", None, UNRESTRICTED)) == "key:k1"
    assert cache_scope(Principal("key", "k2", None, UNRESTRICTED)) == "key:k2"
    assert cache_scope(Principal.open_access()) == "open:anonymous"


async def test_memory_store_evicts_least_recently_used_by_bytes() -> None:
    value = b"x" * 1000
    store = MemoryStore(max_bytes=3 * (1000 + ENTRY_OVERHEAD))
    for key in ("a", "b", "c"):
        store.put(key, value, 60)
    assert await store.get("a") == value  # now "b" is the least recently used
    store.put("d", value, 60)
    assert await store.get("b") is None
    assert [await store.get(k) for k in ("a", "c", "d")] == [value] * 3
    assert store.size_bytes == 3 * (1000 + ENTRY_OVERHEAD)
    store.put("huge", b"y" * 10_000, 60)  # larger than the whole store: not kept
    assert await store.get("huge") is None
    assert len(store) == 3


async def test_memory_store_forgets_expired_answers() -> None:
    store = MemoryStore(max_bytes=1 << 20)
    store.put("k", b"v", 0.05)
    assert await store.get("k") == b"v"
    await asyncio.sleep(0.08)
    assert await store.get("k") is None
    assert store.size_bytes == 0


async def test_redis_store_shares_answers_and_expires_them(redis_server_url: str) -> None:
    prefix = f"lockgate-test-{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(redis_server_url)
    one, two = RedisStore(client, prefix), RedisStore(client, prefix)
    try:
        one.put("k", b"answer", 0.3)
        await one.close()  # waits for the background write
        assert await two.get("k") == b"answer"
        await asyncio.sleep(0.4)
        assert await two.get("k") is None
    finally:
        await client.aclose()


async def test_redis_store_failing_is_a_miss_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="lockgate.cache")
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    store = RedisStore(client, "lockgate-test:")
    try:
        assert await store.get("k") is None
        store.put("k", b"v", 10)
        await store.close()
        assert await store.get("k") is None
    finally:
        await client.aclose()
    warnings = [r.getMessage() for r in caplog.records if r.name == "lockgate.cache"]
    assert len(warnings) == 1  # once per outage, not per request
    assert "without the cache" in warnings[0]
