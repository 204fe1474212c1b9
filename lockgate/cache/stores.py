"""Where cached answers live: this worker's memory (LRU bounded by bytes), or Redis
(`redis_store.RedisStore`, a module of its own so that gateways without Redis never import it)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

__all__ = ["ENTRY_OVERHEAD", "CacheStore", "MemoryStore"]

ENTRY_OVERHEAD = 200
"""Bytes counted per entry on top of its value: the key, the tuple, the dict slot."""


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Keep `value`; may finish in the background, and never fails the request."""

    async def close(self) -> None: ...


class MemoryStore:
    """Least recently used answers go first once `max_bytes` is reached; expired ones too."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if key in self._entries:
            self._drop(key)
        size = len(value) + ENTRY_OVERHEAD
        if size > self._max_bytes:
            return
        while self._bytes + size > self._max_bytes:
            self._drop(next(iter(self._entries)))
        self._entries[key] = (value, time.monotonic() + ttl_s)
        self._bytes += size

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: str) -> None:
        value, _ = self._entries.pop(key)
        self._bytes -= len(value) + ENTRY_OVERHEAD
