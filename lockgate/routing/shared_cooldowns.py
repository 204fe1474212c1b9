"""Cooldowns and pauses shared by every instance through one Redis.

When a breaker opens, a probe closes it, or a provider asks for a pause in this process, the
change is queued (never awaited by the request) and a background task sends it: one Lua script
stores it under `{prefix}cooldown:{label}` (expiring when the skip ends, so a new instance can
read it) and publishes it on `{prefix}cooldowns`. Every process listens on that channel with one
connection and applies what others saw to its current `HealthBook`; it reads the stored keys
after each (re)subscription, since pub/sub drops what is sent while nobody listens.

Routing itself never waits for Redis: decisions stay in memory, and only state changes cost a
round trip. Times travel as wall-clock Unix seconds and are turned into each book's monotonic
clock on arrival, so instances' clocks should agree (NTP) to well under a cooldown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Literal

import msgspec
from redis.asyncio import Redis

from lockgate.limits.lua import LuaScript
from lockgate.routing.health import HealthBook

__all__ = ["CooldownEvent", "SharedCooldowns"]

log = logging.getLogger("lockgate.routing")

MAX_PENDING = 1024
"""Labels waiting to be sent; beyond this (Redis slow or gone) new changes are dropped."""
SEND_TIMEOUT_S = 2.0
ATTACH_WAIT_S = 1.0
"""How long a new book waits for the stored cooldowns before it serves without them."""
SUBSCRIBE_TIMEOUT_S = 5.0
IDLE_PING_S = 30.0
"""A silent subscription is pinged this often; no answer by the next period means it is dead."""
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 10.0
CLOSE_WAIT_S = 1.0
SCAN_BATCH = 500

Kind = Literal["cooldown", "pause", "closed"]


class CooldownEvent(msgspec.Struct, frozen=True):
    """One change, as published and (for cooldowns and pauses) stored."""

    label: str
    kind: Kind
    ends: float
    """Wall-clock end of the skip (Unix seconds); for `closed`, equal to `at`."""
    at: float
    """Wall-clock time of the change."""
    origin: str
    """The process that saw it, so it ignores its own messages."""


_STORE_AND_PUBLISH = """
-- KEYS[1]: the target's key. ARGV: the event as JSON, kind, at, ends, TTL (ms), channel.
-- A stored cooldown or pause is replaced only by one that ends no sooner; a close deletes a
-- stored cooldown that began before it.
local kind, at, ends = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local current = nil
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, decoded = pcall(cjson.decode, stored)
  if ok and type(decoded) == 'table' then current = decoded end
end
if kind == 'closed' then
  if current == nil or (current.kind == 'cooldown' and (tonumber(current.at) or 0) <= at) then
    redis.call('DEL', KEYS[1])
  end
elseif current == nil or (tonumber(current.ends) or 0) <= ends then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[5])
end
redis.call('PUBLISH', ARGV[6], ARGV[1])
return {}
"""

_decoder = msgspec.json.Decoder(CooldownEvent)


class SharedCooldowns:
    """The bus: a `HealthListener` for the books attached to it, and their feed of remote changes.

    Lives as long as the process; each config's book is attached in turn and remote changes go to
    the latest. A replaced book keeps publishing what its last requests see.
    """

    def __init__(self, client: Redis, prefix: str, wall: Callable[[], float] = time.time) -> None:
        self.origin = uuid.uuid4().hex
        self._redis = client
        self._prefix = prefix
        self._channel = f"{prefix}cooldowns"
        self._wall = wall
        self._script = LuaScript(client, _STORE_AND_PUBLISH)
        self._book: HealthBook | None = None
        self._pending: dict[str, CooldownEvent] = {}
        self._dropped = 0
        self._flusher: asyncio.Task[None] | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self._closed = False

    def key(self, label: str) -> str:
        return f"{self._prefix}cooldown:{label}"

    @property
    def channel(self) -> str:
        return self._channel

    def start(self) -> None:
        self._subscriber = asyncio.get_running_loop().create_task(self._subscribe_forever())

    async def attach(self, book: HealthBook) -> None:
        """Send `book`'s changes and feed it others'; it first learns the stored ones (bounded)."""
        book.listen(self)
        self._book = book
        try:
            await asyncio.wait_for(self._load_stored(book, include_own=True), ATTACH_WAIT_S)
        except Exception as exc:  # Redis down must not stop a start or a reload
            log.warning("reading shared cooldowns from Redis failed: %r", exc)

    async def close(self) -> None:
        """Stop listening; give queued changes a moment to be sent."""
        self._closed = True
        if self._subscriber is not None:
            self._subscriber.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._subscriber
        flusher = self._flusher
        if flusher is not None:
            done, _ = await asyncio.wait({flusher}, timeout=CLOSE_WAIT_S)
            if not done:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher

    # HealthListener: called on the request path, so they only queue.

    def opened(self, label: str, seconds: float) -> None:
        now = self._wall()
        self._queue(CooldownEvent(label, "cooldown", now + seconds, now, self.origin))

    def paused(self, label: str, seconds: float) -> None:
        now = self._wall()
        self._queue(CooldownEvent(label, "pause", now + seconds, now, self.origin))

    def closed(self, label: str) -> None:
        now = self._wall()
        self._queue(CooldownEvent(label, "closed", now, now, self.origin))

    def _queue(self, event: CooldownEvent) -> None:
        if self._closed:
            return
        pending = self._pending.get(event.label)
        if pending is None and len(self._pending) >= MAX_PENDING:
            self._dropped += 1
            return
        if pending is not None and _outlasts(pending, event):
            return
        self._pending[event.label] = event  # coalesced: one queued change per label
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                label = next(iter(self._pending))
                event = self._pending.pop(label)
                try:
                    await asyncio.wait_for(self._send(event), SEND_TIMEOUT_S)
                except Exception as exc:
                    log.warning(
                        "sharing the %s of %s through Redis failed: %r", event.kind, label, exc
                    )
            if self._dropped:
                log.warning("%d cooldown changes were not shared: too many queued", self._dropped)
                self._dropped = 0
        finally:
            self._flusher = None

    async def _send(self, event: CooldownEvent) -> None:
        ttl_ms = 0
        if event.kind != "closed":
            ttl_ms = math.ceil((event.ends - self._wall()) * 1000)
            if ttl_ms <= 0:
                return  # over before it could be sent
        await self._script(
            [self.key(event.label)],
            [
                msgspec.json.encode(event).decode(),
                event.kind,
                repr(event.at),
                repr(event.ends),
                ttl_ms,
                self._channel,
            ],
        )

    # Receiving.

    def receive(self, data: bytes | str) -> None:
        """Apply one published message to the current book (own messages are ignored)."""
        event = _decode(data)
        if event is None or event.origin == self.origin or self._book is None:
            return
        self._apply(event, self._book)

    def _apply(self, event: CooldownEvent, book: HealthBook) -> None:
        """Into `book`'s terms: the wall-clock times become durations from now on either clock."""
        now = self._wall()
        age_s = max(0.0, now - event.at)
        if event.kind == "closed":
            book.shared_close(event.label, age_s)
            return
        remaining = event.ends - now
        if remaining <= 0:
            return
        if event.kind == "cooldown":
            book.shared_cooldown(event.label, remaining, age_s)
        else:
            book.shared_pause(event.label, remaining)

    async def _load_stored(self, book: HealthBook, include_own: bool) -> None:
        keys = [
            key
            async for key in self._redis.scan_iter(
                match=_glob_escape(self._prefix) + "cooldown:*", count=SCAN_BATCH
            )
        ]
        for start in range(0, len(keys), SCAN_BATCH):
            for value in await self._redis.mget(keys[start : start + SCAN_BATCH]):
                event = None if value is None else _decode(value)
                if event is not None and (include_own or event.origin != self.origin):
                    self._apply(event, book)

    async def _subscribe_forever(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            pubsub = self._redis.pubsub()
            try:
                await asyncio.wait_for(pubsub.subscribe(self._channel), SUBSCRIBE_TIMEOUT_S)
                awaiting_pong = False
                while True:
                    message = await pubsub.get_message(timeout=IDLE_PING_S)
                    if message is None:
                        if awaiting_pong:
                            raise ConnectionError("Redis did not answer a ping")
                        await pubsub.ping()
                        awaiting_pong = True
                        continue
                    awaiting_pong = False
                    if message["type"] == "message":
                        self.receive(message["data"])
                    elif message["type"] == "subscribe":
                        # Also after redis-py reconnected and resubscribed on its own.
                        book = self._book
                        if book is not None:
                            await asyncio.wait_for(
                                self._load_stored(book, include_own=False), SUBSCRIBE_TIMEOUT_S
                            )
                        delay = RECONNECT_MIN_S
            except Exception as exc:
                log.warning(
                    "listening for shared cooldowns on Redis failed (%r); retrying in %.1f s",
                    exc,
                    delay,
                )
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(RECONNECT_MAX_S, delay * 2)


def _outlasts(queued: CooldownEvent, new: CooldownEvent) -> bool:
    """Keep a queued cooldown over a pause that ends no later (the cooldown says more)."""
    return queued.kind == "cooldown" and new.kind == "pause" and queued.ends >= new.ends


def _decode(data: bytes | str) -> CooldownEvent | None:
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        log.warning("ignoring a malformed shared cooldown: %s", exc)
        return None


def _glob_escape(text: str) -> str:
    """`text` matched literally by SCAN's glob pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
