"""The cache in Redis: shared by every worker and instance on the same Redis."""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as redis
from redis.exceptions import RedisError

__all__ = ["RedisStore"]

log = logging.getLogger("lockgate.cache")


class RedisStore:
    """Shared by every worker and instance on the same Redis; a Redis failure is a miss.

    Reads wait for Redis (they decide the answer); writes run in the background so a slow
    Redis never delays an answer already received.
    """

    def __init__(self, client: redis.Redis, prefix: str, timeout_s: float = 0.5) -> None:
        self._client = client
        self._prefix = f"{prefix}cache:"
        self._timeout_s = timeout_s
        self._writes: set[asyncio.Task[None]] = set()
        self._failing_since: float | None = None

    async def get(self, key: str) -> bytes | None:
        try:
            async with asyncio.timeout(self._timeout_s):
                value = await self._client.get(self._prefix + key)
        except (RedisError, OSError, TimeoutError) as error:
            self._failed("read", error)
            return None
        self._failing_since = None
        return value if isinstance(value, bytes) else None

    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        task = asyncio.get_running_loop().create_task(self._put(key, value, ttl_s))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=2)

    async def _put(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            async with asyncio.timeout(self._timeout_s * 4):
                await self._client.set(self._prefix + key, value, px=max(1, round(ttl_s * 1000)))
        except (RedisError, OSError, TimeoutError) as error:
            self._failed("write", error)

    def _failed(self, what: str, error: BaseException) -> None:
        # Once per outage, not once per request.
        now = time.monotonic()
        if self._failing_since is None or now - self._failing_since > 60:
            log.warning(
                "cache %s failed (%s); answering without the cache until Redis is back",
                what,
                type(error).__name__,
            )
            self._failing_since = now
