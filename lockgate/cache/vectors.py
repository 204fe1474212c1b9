"""Prompt vectors of the semantic cache, per scope, and the nearest one to a new prompt.

A scope is whose answers may be reused (a team, a key; it should name the embeddings model
too, so vectors of two models never meet). Each scope keeps at most `max_entries_per_scope`
vectors, the oldest going first; an entry past its `expires_at` is never returned. Lookups are
brute force: a dot product of unit vectors is their cosine similarity, and a few thousand
vectors of a few hundred dimensions take well under a millisecond in NumPy.

NumPy comes with the `semantic` extra, not with the core install, so it is imported on first
use: the module imports without it.
"""

from __future__ import annotations

import importlib.util
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis.asyncio as redis

from lockgate.cache.local_embeddings import INSTALL_HINT

if TYPE_CHECKING:
    import numpy
    from numpy.typing import NDArray

__all__ = ["MemoryVectorIndex", "RedisVectorIndex"]

_EXPIRY = struct.Struct("<d")
MAX_SCOPES = 10_000
"""Scopes a memory index keeps; the oldest created goes first beyond it."""


def _require_numpy() -> None:
    if importlib.util.find_spec("numpy") is None:
        raise RuntimeError(f"the semantic cache needs NumPy, not installed: {INSTALL_HINT}")


def _unit(vector: Sequence[float], dimensions: int) -> NDArray[numpy.float32]:
    """`vector` as float32 of length 1; ValueError for a wrong length or a zero vector."""
    import numpy

    array = numpy.asarray(vector, dtype=numpy.float32).reshape(-1)
    if array.shape[0] != dimensions:
        raise ValueError(f"expected a vector of {dimensions} dimensions, got {array.shape[0]}")
    norm = float(numpy.linalg.norm(array))
    if not norm or norm != norm:  # zero, or NaN
        raise ValueError("cannot index a zero or NaN vector")
    return array / numpy.float32(norm)


def _check_bounds(max_entries_per_scope: int, dimensions: int) -> None:
    if max_entries_per_scope < 1:
        raise ValueError("max_entries_per_scope must be at least 1")
    if dimensions < 1:
        raise ValueError("dimensions must be at least 1")


class _Scope:
    """A ring of up to `capacity` rows: a new entry takes the oldest row once full."""

    def __init__(self, capacity: int, dimensions: int) -> None:
        import numpy

        self.capacity = capacity
        start = min(capacity, 4)  # most scopes hold a few entries; grows by doubling
        self.vectors: NDArray[numpy.float32] = numpy.zeros((start, dimensions), numpy.float32)
        self.expires: NDArray[numpy.float64] = numpy.zeros(start, numpy.float64)
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        self.next = 0
        """The row the next new entry takes once the ring is full (the oldest)."""

    def add(self, entry_id: str, vector: NDArray[numpy.float32], expires_at: float) -> None:
        import numpy

        row = self.rows.get(entry_id)
        if row is None:
            if len(self.ids) < self.capacity:
                row = len(self.ids)
                if row == self.vectors.shape[0]:
                    grown = min(self.capacity, row * 2)
                    vectors = numpy.zeros((grown, self.vectors.shape[1]), numpy.float32)
                    vectors[:row] = self.vectors
                    expires = numpy.zeros(grown, numpy.float64)
                    expires[:row] = self.expires
                    self.vectors, self.expires = vectors, expires
                self.ids.append(entry_id)
            else:
                row = self.next
                self.next = (row + 1) % self.capacity
                del self.rows[self.ids[row]]
                self.ids[row] = entry_id
            self.rows[entry_id] = row
        self.vectors[row] = vector
        self.expires[row] = expires_at

    def discard(self, entry_id: str) -> None:
        row = self.rows.get(entry_id)
        if row is not None:
            self.expires[row] = float("-inf")  # never found again; its row is reused in turn

    def nearest(
        self, query: NDArray[numpy.float32], threshold: float, now: float
    ) -> tuple[str, float] | None:
        import numpy

        count = len(self.ids)
        scores = self.vectors[:count] @ query
        scores[self.expires[:count] <= now] = -numpy.inf
        best = int(numpy.argmax(scores))
        score = float(scores[best])
        if score < threshold:
            return None
        return self.ids[best], min(score, 1.0)

    def all_expired(self, now: float) -> bool:
        return bool((self.expires[: len(self.ids)] <= now).all())


class MemoryVectorIndex:
    """This worker's vectors: a NumPy matrix per scope, bounded per scope.

    Its methods are coroutines only to match `RedisVectorIndex`; they never suspend.

    Times are any clock, as long as `add` and `nearest` use the same one. Not shared across
    workers or instances (`RedisVectorIndex` is).
    """

    def __init__(self, max_entries_per_scope: int, dimensions: int) -> None:
        _check_bounds(max_entries_per_scope, dimensions)
        _require_numpy()
        self._max = max_entries_per_scope
        self._dimensions = dimensions
        self._scopes: dict[str, _Scope] = {}

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def add(
        self, scope: str, vector: Sequence[float], entry_id: str, expires_at: float
    ) -> None:
        """Index `vector` as `entry_id` (replacing an entry of that id); may drop the oldest."""
        unit = _unit(vector, self._dimensions)
        entries = self._scopes.get(scope)
        if entries is None:
            if len(self._scopes) >= MAX_SCOPES:
                del self._scopes[next(iter(self._scopes))]  # the oldest scope goes
            entries = self._scopes[scope] = _Scope(self._max, self._dimensions)
        entries.add(entry_id, unit, expires_at)

    async def nearest(
        self, scope: str, vector: Sequence[float], threshold: float, now: float
    ) -> tuple[str, float] | None:
        """The most similar live entry of `scope` and its cosine, if it reaches `threshold`."""
        query = _unit(vector, self._dimensions)
        entries = self._scopes.get(scope)
        if entries is None:
            return None
        found = entries.nearest(query, threshold, now)
        if found is None and entries.all_expired(now):
            del self._scopes[scope]
        return found

    async def discard(self, scope: str, entry_id: str) -> None:
        """Forget an entry (say its answer is gone from the cache store)."""
        entries = self._scopes.get(scope)
        if entries is not None:
            entries.discard(entry_id)

    def __len__(self) -> int:
        """Entries held, live or expired, in all scopes."""
        return sum(len(entries.ids) for entries in self._scopes.values())


# KEYS: the scope's hash (entry id -> expiry + vector) and its sorted set (entry id by age).
# ARGV: entry id, packed entry, expiry in Unix milliseconds, the bound.
_ADD = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local now = redis.call('TIME')
redis.call('ZADD', KEYS[2], 'NX', now[1] * 1000000 + now[2], ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do
    redis.call('HDEL', KEYS[1], oldest[i])
  end
end
local expires = tonumber(ARGV[3])
for _, key in ipairs(KEYS) do
  local current = redis.call('PEXPIRETIME', key)
  if current >= 0 and current < expires or current == -1 then
    redis.call('PEXPIREAT', key, expires)
  end
end
return 0
"""

# KEYS as for _ADD. ARGV: now (Unix seconds), the packed size, then the entry ids seen
# expired or of the wrong size. Each is checked again here, so an entry re-added since the
# lookup read it stays.
_PRUNE = """
local now = tonumber(ARGV[1])
local size = tonumber(ARGV[2])
local removed = 0
for i = 3, #ARGV do
  local packed = redis.call('HGET', KEYS[1], ARGV[i])
  if packed and (string.len(packed) ~= size or struct.unpack('<d', packed) <= now) then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    removed = removed + 1
  end
end
return removed
"""

# KEYS as for _ADD. ARGV: the entry id.
_DISCARD = """
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('ZREM', KEYS[2], ARGV[1])
"""


class RedisVectorIndex:
    """Vectors shared by every worker and instance on one Redis (7.0, no RediSearch).

    Layout per scope: a hash `{prefix}semvec:{scope}` of entry id -> 8-byte little-endian
    float64 expiry (Unix seconds) followed by the unit vector as little-endian float32, and a
    sorted set `...:age` of the same ids by insertion time. `add` is one Lua script: set the
    field, bump its age, pop the oldest beyond `max_entries_per_scope`, and push both keys'
    expiry out to the latest entry's, so an idle scope vanishes by itself. Redis 7.0 cannot
    expire single hash fields, so an expired entry stays until the bound pushes it out, the
    key expires, or a lookup that saw it prunes it (one more round trip, only then).

    `nearest` is one HGETALL, then a NumPy dot product here. The trade-off: no search index
    is needed on the server and the lookup is exact, but each lookup moves the whole scope
    over the network (about 1.5 KiB per entry at 384 dimensions: 1.5 MiB at 1,000 entries)
    and HGETALL holds the single-threaded server for time linear in that. The bound per scope
    is therefore the bound on a lookup's work; keep it in the low thousands. Times here are
    Unix seconds (`time.time()`), since all instances must agree on them.

    Redis errors (RedisError, OSError) propagate: the caller treats one as a miss.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        max_entries_per_scope: int,
        dimensions: int,
    ) -> None:
        _check_bounds(max_entries_per_scope, dimensions)
        _require_numpy()
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("the vector index needs a Redis client without decode_responses")
        self._client = client
        self._prefix = f"{prefix}semvec:"
        self._max = max_entries_per_scope
        self._dimensions = dimensions
        self._add = client.register_script(_ADD)
        self._prune = client.register_script(_PRUNE)
        self._discard = client.register_script(_DISCARD)

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def keys(self, scope: str) -> list[str]:
        """The scope's two keys; braces keep them in one Redis Cluster slot."""
        base = f"{self._prefix}{{{scope}}}"
        return [base, f"{base}:age"]

    async def add(
        self, scope: str, vector: Sequence[float], entry_id: str, expires_at: float
    ) -> None:
        """Index `vector` as `entry_id` (replacing an entry of that id); may drop the oldest."""
        unit = _unit(vector, self._dimensions)
        packed = _EXPIRY.pack(expires_at) + unit.astype("<f4").tobytes()
        expires_ms = max(1, round(expires_at * 1000))
        await self._add(keys=self.keys(scope), args=[entry_id, packed, expires_ms, self._max])

    async def nearest(
        self, scope: str, vector: Sequence[float], threshold: float, now: float
    ) -> tuple[str, float] | None:
        """The most similar live entry of `scope` and its cosine, if it reaches `threshold`."""
        import numpy

        query = _unit(vector, self._dimensions)
        keys = self.keys(scope)
        stored = await self._client.hgetall(keys[0])
        if not stored:
            return None
        size = _EXPIRY.size + 4 * self._dimensions
        ids: list[str] = []
        rows: list[bytes] = []
        stale: list[str] = []
        for raw_id, packed in stored.items():
            entry_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            # Wrong size: another model's vector, never a match.
            if (
                not isinstance(packed, bytes)
                or len(packed) != size
                or _EXPIRY.unpack_from(packed)[0] <= now
            ):
                stale.append(entry_id)
            else:
                ids.append(entry_id)
                rows.append(packed)
        if stale:
            await self._prune(keys=keys, args=[float(now), size, *stale])
        if not rows:
            return None
        table = numpy.frombuffer(b"".join(rows), dtype=numpy.uint8).reshape(len(rows), size)
        vectors = table[:, _EXPIRY.size :].copy().view("<f4")
        scores = vectors @ query
        best = int(numpy.argmax(scores))
        score = float(scores[best])
        if score < threshold:
            return None
        return ids[best], min(score, 1.0)

    async def discard(self, scope: str, entry_id: str) -> None:
        """Forget an entry (say its answer is gone from the cache store)."""
        await self._discard(keys=self.keys(scope), args=[entry_id])
