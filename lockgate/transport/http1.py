"""HTTP/1.1 to the providers: keep-alive connections over asyncio, responses parsed by httptools.

Why not aiohttp's client, which Lockgate used before: measured on loopback with a 50 ms upstream
(docs/performance.md), a request through aiohttp's client cost ~0.6 ms more than the same
request written and parsed here, most of the gateway's added latency. A provider call needs
little of what aiohttp's client offers (cookies, redirects, proxies from the environment,
multipart, tracing signals): one POST with a byte body, and its answer read whole or as it
arrives. What it does need is here: a pool of keep-alive connections per origin, TLS with the
system's trust store, bounded heads and bodies, flow control for a slow reader, `gzip`/`deflate`
bodies, and a clear error for every way a connection fails.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import unquote, urlsplit

import httptools

__all__ = [
    "MAX_HEAD_BYTES",
    "Connection",
    "ConnectionPool",
    "Exchange",
    "InvalidResponse",
    "Origin",
    "PeerClosed",
    "UnsafeRequest",
    "origin_of",
    "request_head",
]

MAX_HEAD_BYTES = 64 * 1024
"""Largest response head (status line and headers) accepted from a provider."""
KEEPALIVE_S = 30.0
"""An idle connection older than this is closed rather than reused (servers drop them too)."""
HIGH_WATER = 1024 * 1024
"""Bytes buffered from a provider before reading pauses until the reader catches up."""


class PeerClosed(ConnectionError):
    """The provider closed the connection before its answer was complete."""


class InvalidResponse(Exception):
    """The provider's answer is not valid HTTP/1.1 (or exceeds a limit)."""


class UnsafeRequest(ValueError):
    """A request's URL or header cannot be sent as it is (line breaks, unknown scheme)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a URL's request goes and the parts of its head that depend on it."""

    scheme: str
    host: str
    port: int
    target: bytes
    """The request line's target: path and query."""
    host_header: bytes
    authorization: str | None
    """Basic credentials from the URL's userinfo, if it has any."""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


@lru_cache(maxsize=1024)
def origin_of(url: str) -> Origin:
    """The parsed URL; provider URLs come from the config, so a small cache holds them all."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeRequest(f"unsupported URL scheme {scheme!r} (http or https)")
    host = parts.hostname
    if not host:
        raise UnsafeRequest("the URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UnsafeRequest("the URL's port is not a number from 0 to 65535") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in target for c in "\r\n\x00 "):
        raise UnsafeRequest("the URL's path contains whitespace or a control character")
    bracketed = f"[{host}]" if ":" in host else host
    default = port == (443 if scheme == "https" else 80)
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
    return Origin(
        scheme,
        host,
        port,
        target.encode(),
        (bracketed if default else f"{bracketed}:{port}").encode("idna"),
        authorization,
    )


def request_head(origin: Origin, headers: Mapping[str, str], length: int) -> bytes:
    """`POST` head for a body of `length` bytes; refuses a name or value with a line break.

    `host` comes from the URL unless the headers have it (a signed request does); so does
    `authorization` when the URL carries credentials.
    """
    lines = [b"POST ", origin.target, b" HTTP/1.1\r\n", b"", b"content-length: %d\r\n" % length]
    own_host = own_authorization = False
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise UnsafeRequest(f"the value of header {name.splitlines()[0]!r} is not one line")
        lines.append(f"{name}: {value}\r\n".encode())
        if len(name) == 4 and name.lower() == "host":
            own_host = True
        elif len(name) == 13 and name.lower() == "authorization":
            own_authorization = True
    if not own_host:
        lines[3] = b"host: " + origin.host_header + b"\r\n"
    if origin.authorization is not None and not own_authorization:
        lines.append(f"authorization: {origin.authorization}\r\n".encode())
    lines.append(b"\r\n")
    return b"".join(lines)


class Connection(asyncio.Protocol):
    """One keep-alive connection; carries one exchange at a time."""

    def __init__(self, pool: ConnectionPool, key: tuple[str, str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.exchange: Exchange | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for: this connection cannot be trusted
            self.close()
            return
        exchange.feed(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.exchange is not None:
            self.exchange.lost(exc)

    def pause_writing(self) -> None:
        pass  # bodies are written whole: the transport buffers them

    def resume_writing(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Exchange:
    """One request's answer as it arrives: status and headers, then body bytes until the end."""

    __slots__ = (
        "_body_size",
        "_chunks",
        "_connection",
        "_decoder",
        "_delimited",
        "_error",
        "_head_bytes",
        "_keep_alive",
        "_loop",
        "_parser",
        "_paused",
        "_waiter",
        "complete",
        "headers",
        "status",
    )

    def __init__(self, connection: Connection, loop: asyncio.AbstractEventLoop) -> None:
        self._connection = connection
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._chunks: list[bytes] = []
        self._body_size = 0
        self._head_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._paused = False
        self._decoder: zlib._Decompress | None = None
        self._delimited = False
        self._keep_alive = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.complete = False

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES:
            raise InvalidResponse(f"response head over {MAX_HEAD_BYTES} bytes")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 1xx: an interim answer; the real head follows
            self.headers = {}
            return
        self.status = status
        headers = self.headers
        self._delimited = "content-length" in headers or "chunked" in headers.get(
            "transfer-encoding", ""
        )
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(wbits=47)  # gzip or zlib, by its header
        elif encoding not in ("identity", ""):
            raise InvalidResponse(f"unsupported content-encoding {encoding!r}")
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._decoder is not None:
            body = self._decoder.decompress(body)
        if body:
            self._chunks.append(body)
            self._body_size += len(body)
            if self._body_size > HIGH_WATER and not self._paused:
                transport = self._connection.transport
                if transport is not None:
                    transport.pause_reading()
                    self._paused = True
            self._wake()

    def on_message_complete(self) -> None:
        if self.status == 0:  # the end of a 1xx answer
            return
        self._finish()

    # from the connection

    def feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except InvalidResponse as exc:
            self._fail(exc)
        except httptools.HttpParserUpgrade:
            self._fail(InvalidResponse("the provider switched protocols"))
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, InvalidResponse) else InvalidResponse(str(exc)))

    def lost(self, exc: Exception | None) -> None:
        if self.complete:
            return
        if self.status and not self._delimited and exc is None:
            self._finish()  # a body delimited by the end of the connection
        else:
            self._fail(PeerClosed())

    def _finish(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._chunks.append(tail)
        self._keep_alive = self._parser.should_keep_alive()
        self.complete = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._connection.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # for the reader

    @property
    def reusable(self) -> bool:
        """Finished cleanly and the provider keeps the connection open."""
        return (
            self.complete
            and self._error is None
            and not self._chunks
            and self._keep_alive
            and not self._connection.closed
        )

    async def wait_head(self, timeout_s: float | None = None) -> None:
        """Until the status and headers arrived; each wait for bytes at most `timeout_s`."""
        while self.status == 0:
            if self._error is not None:
                raise self._error
            await self._wait(timeout_s)

    async def read_chunk(self, timeout_s: float | None = None) -> bytes:
        """All body bytes received so far, waiting (up to `timeout_s`) if there are none;
        b"" at the end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            await self._wait(timeout_s)
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._body_size = 0
        if self._paused:
            self._paused = False
            transport = self._connection.transport
            if transport is not None and not self._connection.closed:
                transport.resume_reading()
        return data

    async def _wait(self, timeout_s: float | None = None) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = None if timeout_s is None else self._loop.call_later(timeout_s, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def release(self) -> None:
        """Give the connection back to the pool if it can carry another request; else close it."""
        connection = self._connection
        if connection.exchange is not self:
            return
        connection.exchange = None
        del self._parser  # it refers back to this exchange: no cycle left for the collector
        if self.reusable:
            connection.idle_since = self._loop.time()
            connection.pool.put(connection)
        else:
            connection.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class ConnectionPool:
    """Idle keep-alive connections per origin; a request takes the newest or opens one."""

    def __init__(self, connect_timeout_s: float) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._all: set[Connection] = set()
        self._tls: ssl.SSLContext | None = None

    async def start(self, origin: Origin, head: bytes, body: bytes) -> Exchange:
        """Send a request; the exchange's head and body are then read from it."""
        loop = asyncio.get_running_loop()
        connection = self._take(origin.key, loop.time())
        if connection is None:
            connection = await self._connect(origin, loop)
        exchange = Exchange(connection, loop)
        connection.exchange = exchange
        transport = connection.transport
        assert transport is not None
        if len(body) < 16384:
            transport.write(head + body)
        else:
            transport.writelines((head, body))
        return exchange

    def _take(self, key: tuple[str, str, int], now: float) -> Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if now - connection.idle_since > KEEPALIVE_S:
                connection.close()
                continue
            return connection
        return None

    async def _connect(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> Connection:
        tls = None
        if origin.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
                self._tls.set_alpn_protocols(["http/1.1"])
            tls = self._tls
        async with asyncio.timeout(self._connect_timeout_s):
            _, connection = await loop.create_connection(
                lambda: Connection(self, origin.key),
                origin.host,
                origin.port,
                ssl=tls,
                server_hostname=origin.host if tls is not None else None,
            )
        self._all.add(connection)
        return connection

    def put(self, connection: Connection) -> None:
        self._idle.setdefault(connection.key, []).append(connection)

    def forget(self, connection: Connection) -> None:
        self._all.discard(connection)

    def close(self) -> None:
        for connection in list(self._all):
            connection.close()
        self._all.clear()
        self._idle.clear()
