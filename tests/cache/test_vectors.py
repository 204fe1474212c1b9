"""The semantic cache's vector indexes: in memory and on a real Redis (7.0, no RediSearch).

Each behaviour runs on both. These tests need the `semantic` extra (NumPy, and the local model
for the real-prompt tests); without it they fail with that message, never skip.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import pytest
import redis.asyncio as redis

from lockgate.cache.local_embeddings import LocalEmbedder
from lockgate.cache.vectors import MemoryVectorIndex, RedisVectorIndex

DIMENSIONS = 8


def basis(index: int, dimensions: int = DIMENSIONS) -> list[float]:
    """A unit vector orthogonal to every other basis vector: similarity 1 to itself, 0 else."""
    return [1.0 if axis == index else 0.0 for axis in range(dimensions)]


def hit(entry_id: str, score: float) -> object:
    """What `nearest` returns for a hit, the score compared approximately."""
    return (entry_id, pytest.approx(score, abs=1e-6))


class Index(Protocol):
    """Both indexes seen through one async interface, so every test runs on each."""

    async def add(
        self, scope: str, vector: Sequence[float], entry_id: str, expires_at: float
    ) -> None: ...

    async def nearest(
        self, scope: str, vector: Sequence[float], threshold: float, now: float
    ) -> tuple[str, float] | None: ...

    async def discard(self, scope: str, entry_id: str) -> None: ...

    async def count(self, scope: str) -> int: ...


class InMemory(MemoryVectorIndex):
    async def count(self, scope: str) -> int:
        return len(self)


class InRedis(RedisVectorIndex):
    def __init__(self, client: redis.Redis, prefix: str, max_entries: int, dimensions: int) -> None:
        super().__init__(client, prefix, max_entries, dimensions)
        self.client = client

    async def count(self, scope: str) -> int:
        vectors, ages = self.keys(scope)
        stored = int(await self.client.hlen(vectors))
        assert int(await self.client.zcard(ages)) == stored
        return stored


def memory_index(max_entries: int, dimensions: int) -> MemoryVectorIndex:
    try:
        return MemoryVectorIndex(max_entries, dimensions)
    except RuntimeError as error:
        pytest.fail(f"these tests need the semantic extra (CI installs it): {error}")


@pytest.fixture
async def redis_client(redis_server_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client: redis.Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    own = f"lockgate-test-{uuid.uuid4().hex}:"
    yield own
    keys = [key async for key in redis_client.scan_iter(match=f"{own}*")]
    if keys:
        await redis_client.delete(*keys)


class MakeIndex(Protocol):
    def __call__(self, max_entries: int = 16, dimensions: int = DIMENSIONS) -> Index: ...


@pytest.fixture(params=["memory", "redis"])
def make_index(request: pytest.FixtureRequest, redis_client: redis.Redis, prefix: str) -> MakeIndex:
    def make(max_entries: int = 16, dimensions: int = DIMENSIONS) -> Index:
        memory_index(max_entries, dimensions)  # fails clearly without NumPy
        if request.param == "memory":
            return InMemory(max_entries, dimensions)
        return InRedis(redis_client, prefix, max_entries, dimensions)

    return make


@pytest.fixture(scope="module")
async def embedder() -> AsyncIterator[LocalEmbedder]:
    try:
        model = LocalEmbedder("all-MiniLM-L6-v2")
    except RuntimeError as error:
        pytest.fail(f"these tests need the semantic extra (CI installs it): {error}")
    await model.load()
    yield model
    model.close()


async def test_a_reworded_prompt_finds_the_cached_entry(
    make_index: MakeIndex, embedder: LocalEmbedder
) -> None:
    index = make_index(dimensions=embedder.dimensions)
    cached, reworded, unrelated = await embedder.embed(
        [
            "How do I reset my password?",
            "What are the steps to change my password?",
            "What is the capital of France?",
        ]
    )
    now = time.time()
    await index.add("team:a", cached, "answer-1", now + 60)
    hit = await index.nearest("team:a", reworded, 0.8, now)
    assert hit is not None
    assert hit[0] == "answer-1"
    assert 0.8 < hit[1] < 0.85  # 0.823 with this model
    assert await index.nearest("team:a", reworded, 0.92, now) is None
    assert await index.nearest("team:a", unrelated, 0.5, now) is None


async def test_the_best_entry_wins(make_index: MakeIndex) -> None:
    index = make_index()
    now = time.time()
    await index.add("s", basis(0), "x-axis", now + 60)
    await index.add("s", basis(1), "y-axis", now + 60)
    assert await index.nearest("s", [0.6, 0.8, 0, 0, 0, 0, 0, 0], 0.5, now) == hit("y-axis", 0.8)
    assert await index.nearest("s", [0.8, 0.6, 0, 0, 0, 0, 0, 0], 0.5, now) == hit("x-axis", 0.8)
    # Vectors are normalised on the way in: length does not matter, direction does.
    assert await index.nearest("s", [0, 5, 0, 0, 0, 0, 0, 0], 0.999, now) == hit("y-axis", 1.0)


async def test_a_miss_below_the_threshold_and_in_an_empty_scope(make_index: MakeIndex) -> None:
    index = make_index()
    now = time.time()
    assert await index.nearest("nobody", basis(0), 0.5, now) is None
    await index.add("s", basis(0), "x-axis", now + 60)
    assert await index.nearest("s", [0.6, 0.8, 0, 0, 0, 0, 0, 0], 0.61, now) is None


async def test_a_tenant_never_gets_another_tenant_s_entry(make_index: MakeIndex) -> None:
    index = make_index()
    now = time.time()
    await index.add("team:a", basis(0), "a-secret", now + 60)
    await index.add("team:b", basis(1), "b-answer", now + 60)
    assert await index.nearest("team:b", basis(0), 0.5, now) is None
    # However low the threshold, team B's lookup only ever sees team B's entries.
    assert await index.nearest("team:b", basis(0), -1.0, now) == hit("b-answer", 0.0)
    assert await index.nearest("team:a", basis(0), 0.5, now) == hit("a-secret", 1.0)
    # A scope that looks like another scope's key is still its own.
    assert await index.nearest("team:a:age", basis(0), 0.5, now) is None
    assert await index.nearest("team:", basis(0), 0.5, now) is None


async def test_expired_entries_are_never_returned(make_index: MakeIndex) -> None:
    index = make_index()
    now = time.time()
    await index.add("s", basis(0), "short", now + 10)
    await index.add("s", basis(1), "long", now + 100)
    assert await index.nearest("s", basis(0), 0.5, now + 9) == hit("short", 1.0)
    assert await index.nearest("s", basis(0), 0.5, now + 10) is None
    assert await index.nearest("s", basis(1), 0.5, now + 10) == hit("long", 1.0)
    assert await index.nearest("s", basis(1), 0.5, now + 100) is None


async def test_the_oldest_entries_go_beyond_the_bound(make_index: MakeIndex) -> None:
    index = make_index(max_entries=3)
    now = time.time()
    for axis in range(6):
        await index.add("s", basis(axis), f"entry-{axis}", now + 60)
    assert await index.count("s") == 3
    for axis in range(3):
        assert await index.nearest("s", basis(axis), 0.5, now) is None
    for axis in range(3, 6):
        assert await index.nearest("s", basis(axis), 0.5, now) == hit(f"entry-{axis}", 1.0)


async def test_adding_an_id_again_replaces_its_vector(make_index: MakeIndex) -> None:
    index = make_index(max_entries=2)
    now = time.time()
    await index.add("s", basis(0), "entry", now + 60)
    await index.add("s", basis(1), "entry", now + 60)
    assert await index.count("s") == 1
    assert await index.nearest("s", basis(0), 0.5, now) is None
    assert await index.nearest("s", basis(1), 0.5, now) == hit("entry", 1.0)


async def test_a_discarded_entry_is_not_found(make_index: MakeIndex) -> None:
    index = make_index()
    now = time.time()
    await index.add("s", basis(0), "gone", now + 60)
    await index.add("s", basis(1), "kept", now + 60)
    await index.discard("s", "gone")
    await index.discard("s", "never-added")
    assert await index.nearest("s", basis(0), 0.5, now) is None
    assert await index.nearest("s", basis(1), 0.5, now) == hit("kept", 1.0)


async def test_wrong_vectors_are_refused(make_index: MakeIndex) -> None:
    index = make_index()
    now = time.time()
    with pytest.raises(ValueError, match="expected a vector of 8 dimensions, got 3"):
        await index.add("s", [1.0, 0.0, 0.0], "short", now + 60)
    with pytest.raises(ValueError, match="zero or NaN"):
        await index.add("s", [0.0] * DIMENSIONS, "zero", now + 60)
    with pytest.raises(ValueError, match="expected a vector of 8 dimensions"):
        await index.nearest("s", [1.0] * 9, 0.5, now)


async def test_the_memory_index_grows_then_wraps_around() -> None:
    import numpy

    index = memory_index(100, 32)
    generator = numpy.random.default_rng(7)
    vectors = generator.standard_normal((250, 32)).tolist()
    for number, vector in enumerate(vectors):
        await index.add("s", vector, f"entry-{number}", 1e9)
    assert len(index) == 100
    for number, vector in enumerate(vectors):
        found = await index.nearest("s", vector, 0.999, 0.0)
        assert found == (hit(f"entry-{number}", 1.0) if number >= 150 else None)


async def test_the_memory_index_drops_a_scope_once_all_of_it_expired() -> None:
    index = memory_index(4, DIMENSIONS)
    await index.add("s", basis(0), "a", 10.0)
    await index.add("s", basis(1), "b", 20.0)
    assert await index.nearest("s", basis(2), 0.5, 15.0) is None
    assert len(index) == 2
    assert await index.nearest("s", basis(2), 0.5, 20.0) is None
    assert len(index) == 0


async def test_redis_prunes_what_a_lookup_saw_expired(
    redis_client: redis.Redis, prefix: str
) -> None:
    memory_index(1, DIMENSIONS)
    index = RedisVectorIndex(redis_client, prefix, 8, DIMENSIONS)
    now = time.time()
    await index.add("s", basis(0), "old", now + 5)
    await index.add("s", basis(1), "new", now + 50)
    vectors, ages = index.keys("s")
    assert await redis_client.hlen(vectors) == 2
    assert await index.nearest("s", basis(1), 0.5, now + 6) == hit("new", 1.0)
    assert await redis_client.hkeys(vectors) == [b"new"]
    assert await redis_client.zrange(ages, 0, -1) == [b"new"]


async def test_redis_keys_expire_with_their_latest_entry(
    redis_client: redis.Redis, prefix: str
) -> None:
    memory_index(1, DIMENSIONS)
    index = RedisVectorIndex(redis_client, prefix, 8, DIMENSIONS)
    now = time.time()
    await index.add("s", basis(0), "later", now + 300)
    await index.add("s", basis(1), "sooner", now + 100)  # never shortens the keys' life
    for key in index.keys("s"):
        expires_ms = await redis_client.pexpiretime(key)
        assert abs(expires_ms - (now + 300) * 1000) < 5
    await index.add("t", basis(0), "brief", time.time() + 0.2)
    await asyncio.sleep(0.4)
    assert await redis_client.exists(*index.keys("t")) == 0
    assert await redis_client.exists(*index.keys("s")) == 2


async def test_redis_ignores_and_prunes_another_model_s_vectors(
    redis_client: redis.Redis, prefix: str
) -> None:
    memory_index(1, DIMENSIONS)
    small = RedisVectorIndex(redis_client, prefix, 8, 4)
    index = RedisVectorIndex(redis_client, prefix, 8, DIMENSIONS)
    now = time.time()
    await small.add("s", basis(0, 4), "small", now + 60)
    await index.add("s", basis(0), "right", now + 60)
    assert await index.nearest("s", basis(0), 0.5, now) == hit("right", 1.0)
    assert await redis_client.hkeys(index.keys("s")[0]) == [b"right"]


async def test_redis_index_refuses_a_decoding_client(redis_server_url: str) -> None:
    memory_index(1, DIMENSIONS)
    client = redis.Redis.from_url(redis_server_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisVectorIndex(client, "lockgate-test:", 8, DIMENSIONS)
    await client.aclose()
