"""Minimal ASGI plumbing for the hot path: bounded body reads, responses, disconnect handling.

The client endpoints are plain ASGI callables rather than framework routes: a framework's
middleware and dependency chains cost measurable throughput on every request.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from types import TracebackType
from typing import Any

from lockgate.errors import BadRequest, PayloadTooLarge

__all__ = [
    "CONNECTION_LOST",
    "ClientGone",
    "ConnectionLost",
    "DisconnectWatch",
    "Receive",
    "Request",
    "Scope",
    "Send",
    "new_request_id",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]

_REQUEST_ID_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def new_request_id() -> str:
    """32 hex digits: the time in milliseconds, then 80 random bits.

    Unique like a random id, but ids sort by arrival, so the usage ledger's primary key grows at
    its end instead of at random places (cheaper inserts, and a table that stays compact).
    """
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


class ClientGone(Exception):
    """The client disconnected before its request was read."""


class Request:
    """One HTTP request: its scope, a request id, and a bounded body reader."""

    __slots__ = ("client_request_id", "receive", "request_id", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.client_request_id = _client_request_id(scope["headers"])
        """The caller's own `x-request-id`, when it sent a usable one."""
        self.request_id = self.client_request_id or new_request_id().encode()
        """The id every response carries: the caller's, else a fresh random one."""

    def unique_id(self) -> str:
        """An id no other request has, for the usage ledger (callers may reuse their ids)."""
        if self.client_request_id is None:
            return self.request_id.decode()
        return new_request_id()

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.scope["headers"]:
            if key == name:
                return value  # type: ignore[no-any-return]
        return None

    async def body(self, limit: int) -> bytes:
        """The whole body; 413 as soon as it is known to exceed `limit` bytes."""
        length = self.header(b"content-length")
        if length is not None:
            if not length.isdigit():
                raise BadRequest("Invalid Content-Length header")
            if int(length) > limit:
                raise PayloadTooLarge(limit)
        message = await self.receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise PayloadTooLarge(limit)
            return body
        parts = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            parts.append(chunk)
        return b"".join(parts)


def _client_request_id(headers: Headers) -> bytes | None:
    """The caller's `x-request-id` when it is short and plain."""
    for key, value in headers:
        if key == b"x-request-id":
            if 0 < len(value) <= 128 and _REQUEST_ID_CHARS.issuperset(value):
                return value
            break
    return None


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    headers: Headers,
    content_type: bytes = b"application/json",
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


CONNECTION_LOST = "lockgate.connection_lost"
"""The ASGI extension Lockgate's HTTP protocol (`serving`) adds to each scope:
`scope["extensions"][CONNECTION_LOST]["signal"]` is the connection's `ConnectionLost`."""


class ConnectionLost:
    """Callbacks to run when a client connection closes; one per connection, in each scope.

    Lets a request learn of a hang-up without a task reading `receive()` for it, which costs
    every request a task, its cancellation and the garbage that leaves.
    """

    __slots__ = ("_callbacks", "lost")

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self.lost = False

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def fire(self) -> None:
        self.lost = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


class DisconnectWatch:
    """Cancels the current task when the client goes away, and swallows that cancellation.

    Used around upstream calls: a client that hangs up must not keep a provider busy (and
    billing) for an answer nobody will read. Under Lockgate's own HTTP protocol the connection
    says when it closes (`ConnectionLost`); under another ASGI server a task waits for
    `http.disconnect`, so enter it only after the body has been read.
    """

    __slots__ = ("_connection", "_receive", "_task", "_watcher", "disconnected", "finished")

    def __init__(self, request: Request) -> None:
        self._receive = request.receive
        extension = (request.scope.get("extensions") or {}).get(CONNECTION_LOST)
        self._connection: ConnectionLost | None = extension["signal"] if extension else None
        self._watcher: asyncio.Task[None] | None = None
        self.disconnected = False
        self.finished = False

    async def __aenter__(self) -> DisconnectWatch:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        if self._connection is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        elif self._connection.lost:
            self._gone()
        else:
            self._connection.subscribe(self._gone)
        return self

    def _gone(self) -> None:
        if not self.finished:
            self.disconnected = True
            self._task.cancel()

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self._gone()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self.finished = True
        if self._connection is not None:
            self._connection.unsubscribe(self._gone)
        elif self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None  # the cancelled task's frames refer to this watch
        if self.disconnected and exc_type is asyncio.CancelledError:
            self._task.uncancel()
            return True
        return False
