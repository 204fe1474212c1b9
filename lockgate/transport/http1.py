"""HTTP/1.1 to the providers: keep-alive connections over asyncio, responses parsed by httptools.

Why not aiohttp's client, which Lockgate used before: measured on loopback with a 50 ms upstream
(docs/performance.md), a request through aiohttp's client cost ~0.6 ms more than the same
request written and parsed here, most of the gateway's added latency. A provider call needs
little of what aiohttp's client offers (cookies, redirects, multipart, tracing signals): one
POST with a byte body, and its answer read whole or as it arrives. What it does need is here
(the request head, one connection, one exchange: bounded heads and bodies, flow control for a
slow reader, `gzip`/`deflate` bodies, a clear error for every way a connection fails) and in
`pool.py` (keep-alive connections per origin, TLS with the system's trust store, proxies).
"""

from __future__ import annotations

import asyncio
import base64
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, cast
from urllib.parse import unquote, urlsplit

import httptools

from lockgate.transport.proxies import Proxy

if TYPE_CHECKING:
    from lockgate.transport.pool import ConnectionPool

__all__ = [
    "MAX_HEAD_BYTES",
    "Connection",
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
HIGH_WATER = 1024 * 1024
"""Bytes buffered from a provider before reading pauses until the reader catches up."""
MAX_DECODED_PER_READ = 32 * 1024 * 1024
"""Most bytes a compressed answer may unpack to from one read of the socket."""


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
    try:
        return _parse_origin(url)
    except UnsafeRequest:
        raise
    except ValueError:  # urlsplit's own complaints (e.g. an unclosed IPv6 bracket)
        raise UnsafeRequest("the URL is malformed") from None


def _parse_origin(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeRequest(f"unsupported URL scheme {scheme!r} (http or https)")
    host = parts.hostname
    if not host:
        raise UnsafeRequest("the URL has no host")
    if not host.isascii():
        raise UnsafeRequest("the URL's host is not ASCII: write it in its xn-- (punycode) form")
    if ":" not in host and not all(0 < len(label) < 64 for label in host.rstrip(".").split(".")):
        raise UnsafeRequest("the URL's host has an empty label or one over 63 characters")
    if any(c in host for c in "\r\n\x00 /\\@"):
        raise UnsafeRequest("the URL's host contains a character a host name cannot")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeRequest("the URL's port is not a number from 1 to 65535") from None
    if port == 0:
        raise UnsafeRequest("the URL's port is not a number from 1 to 65535")
    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not target.isascii() or any(c in target for c in "\r\n\x00 "):
        raise UnsafeRequest("the URL's path contains whitespace, a control or non-ASCII character")
    bracketed = f"[{host}]" if ":" in host else host
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
    return Origin(
        scheme,
        host,
        port,
        target.encode(),
        (bracketed if port == default_port else f"{bracketed}:{port}").encode(),
        authorization,
    )


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""A header name (RFC 9110 token)."""
_FRAMING = frozenset({"content-length", "transfer-encoding"})
"""Headers the client writes itself; a config's own would contradict them."""


def request_head(
    origin: Origin, headers: Mapping[str, str], length: int, proxy: Proxy | None = None
) -> bytes:
    """`POST` head for a body of `length` bytes; refuses a name or value with a line break.

    `host` comes from the URL unless the headers have it (a signed request does); so does
    `authorization` when the URL carries credentials. The headers written here are spelled
    `Host`, `Content-Length`: some proxies match names case-sensitively (proxy.py adds a second
    `Content-Length` beside a `content-length`). Through a proxy, an http request names
    the whole URL and carries the proxy's credentials (an https one goes through a tunnel, and
    its head is the same as without a proxy).
    """
    target = origin.target
    if proxy is not None and origin.scheme == "http":
        target = b"http://" + origin.host_header + target
    lines = [b"POST ", target, b" HTTP/1.1\r\n", b"", b"Content-Length: %d\r\n" % length]
    if proxy is not None and origin.scheme == "http" and proxy.authorization is not None:
        lines.append(f"Proxy-Authorization: {proxy.authorization}\r\n".encode())
    own_host = own_authorization = False
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise UnsafeRequest("a header name is empty or holds characters a name cannot")
        if "\n" in value or "\r" in value or "\x00" in value:
            raise UnsafeRequest(f"the value of header {name!r} is not one line")
        lowered = name.lower()
        if lowered in _FRAMING:
            continue
        try:
            lines.append(f"{name}: {value}\r\n".encode())
        except UnicodeEncodeError:
            raise UnsafeRequest(f"the value of header {name!r} cannot be encoded") from None
        own_host = own_host or lowered == "host"
        own_authorization = own_authorization or lowered == "authorization"
    if not own_host:
        lines[3] = b"Host: " + origin.host_header + b"\r\n"
    if origin.authorization is not None and not own_authorization:
        lines.append(f"Authorization: {origin.authorization}\r\n".encode())
    lines.append(b"\r\n")
    return b"".join(lines)


class Connection(asyncio.Protocol):
    """One keep-alive connection; carries one exchange at a time.

    Request bodies are written whole (the body limit bounds them), so the transport's write
    buffer needs no flow control: `pause_writing` keeps asyncio's default, which does nothing.
    """

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
        self.closed = True  # not to be taken from the pool in the moment before connection_lost
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.exchange is not None:
            self.exchange.lost(exc)

    @property
    def usable(self) -> bool:
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


Failure = tuple[type[Exception], tuple[object, ...]]
"""An exchange's failure as its type and arguments: each reader gets an exception of its own.
(One instance raised again and again would keep, through its traceback, every frame that
raised it, and those frames the exchange: a reference cycle per failed request.)"""


class _Surplus(Exception):
    """Bytes after the end of the answer: the connection is not to be trusted again."""


class Exchange:
    """One request's answer as it arrives: status and headers, then body bytes until the end."""

    __slots__ = (
        "_body_size",
        "_budget",
        "_chunks",
        "_connection",
        "_decoder",
        "_delimited",
        "_failure",
        "_head_bytes",
        "_head_read",
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
        self._head_read = 0
        self._budget = MAX_DECODED_PER_READ
        self._waiter: asyncio.Future[bool] | None = None
        self._failure: Failure | None = None
        self._paused = False
        self._decoder: Decoder | None = None
        self._delimited = False
        self._keep_alive = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.complete = False

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.status:  # a second answer to one request: not for this exchange
            raise _Surplus

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES:
            raise InvalidResponse(f"response head over {MAX_HEAD_BYTES} bytes")
        if self.status:
            return  # a chunked body's trailer: nothing a provider call reads
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 1xx: an interim answer; the real head follows
            self.headers = {}
            return
        headers = self.headers
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = Decoder(encoding != "deflate")
        elif encoding not in ("identity", ""):
            raise InvalidResponse(f"unsupported content-encoding {encoding!r}")
        self._delimited = (
            "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
        )
        self.status = status
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._decoder is not None:
            body = self._decoder.decode(body, self._budget)
            self._budget -= len(body)
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
        in_head = self.status == 0
        self._budget = MAX_DECODED_PER_READ
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(InvalidResponse, "the provider switched protocols")
        except (httptools.HttpParserError, InvalidResponse, _Surplus) as exc:
            cause = exc if isinstance(exc, InvalidResponse | _Surplus) else exc.__context__
            if isinstance(cause, _Surplus):
                self._connection.close()  # the answer itself was whole: keep it
            elif isinstance(cause, InvalidResponse):
                self._fail(InvalidResponse, str(cause))
            else:
                self._fail(InvalidResponse, "the answer is not HTTP/1.1")
        else:
            if in_head and self.status == 0:
                # httptools buffers a header line whole before its callback: count the bytes
                # here, or one endless line would grow without bound.
                self._head_read += len(data)
                if self._head_read > MAX_HEAD_BYTES:
                    self._fail(InvalidResponse, f"response head over {MAX_HEAD_BYTES} bytes")

    def lost(self, exc: Exception | None) -> None:
        if self.complete:
            return
        if self.status and not self._delimited and exc is None:
            self._finish()  # a body delimited by the end of the connection
        else:
            self._fail(PeerClosed, "")

    def _finish(self) -> None:
        if self._decoder is not None:
            try:
                tail = self._decoder.flush()
            except InvalidResponse as exc:
                self._fail(InvalidResponse, str(exc))
                return
            if tail:
                self._chunks.append(tail)
        self._keep_alive = self._parser.should_keep_alive()
        self.complete = True
        self._wake()

    def _fail(self, kind: type[Exception], message: str) -> None:
        if self._failure is None:
            self._failure = (kind, (message,) if message else ())
        self._connection.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            kind, args = self._failure
            raise kind(*args)

    # for the reader

    @property
    def reusable(self) -> bool:
        """Finished cleanly and the provider keeps the connection open."""
        return (
            self.complete
            and self._failure is None
            and not self._chunks
            and self._keep_alive
            and self._connection.usable
        )

    async def wait_head(self, timeout_s: float | None = None) -> None:
        """Until the status and headers arrived; each wait for bytes at most `timeout_s`."""
        while self.status == 0:
            self._raise_failure()
            await self._wait(timeout_s)

    async def read_chunk(self, timeout_s: float | None = None) -> bytes:
        """All body bytes received so far, waiting (up to `timeout_s`) if there are none;
        b"" at the end."""
        while not self._chunks:
            self._raise_failure()
            if self.complete:
                return b""
            await self._wait(timeout_s)
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._body_size = 0
        if self._paused:
            self._paused = False
            if self._connection.usable:
                transport = self._connection.transport
                assert transport is not None
                transport.resume_reading()
        return data

    async def _wait(self, timeout_s: float | None = None) -> None:
        # The timer answers False rather than setting an exception on the future: an
        # exception kept there would hold this frame, and the frame the future.
        waiter = self._waiter = self._loop.create_future()
        timer = None if timeout_s is None else self._loop.call_later(timeout_s, _expire, waiter)
        try:
            woken = await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if not woken:
            raise TimeoutError

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


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class Decoder:
    """A `gzip` (of one or more members), `deflate` (zlib-wrapped or raw) body, decoded as it
    arrives; each call may produce at most `limit` bytes (a small body can unpack to gigabytes).
    """

    __slots__ = ("_gzip", "_zlib")

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._zlib: zlib._Decompress | None = None

    def decode(self, data: bytes, limit: int) -> bytes:
        out: list[bytes] = []
        while data:
            if self._zlib is None:
                self._zlib = zlib.decompressobj(31 if self._gzip else _deflate_bits(data))
            decoder = self._zlib
            try:
                piece = decoder.decompress(data, limit + 1)
            except zlib.error:
                raise InvalidResponse("the compressed answer is corrupt") from None
            if len(piece) > limit or decoder.unconsumed_tail:
                raise InvalidResponse(f"the answer unpacks to more than {limit} bytes at once")
            limit -= len(piece)
            out.append(piece)
            data = b""
            if decoder.eof and self._gzip:  # another member may follow (after a deflate
                data, self._zlib = decoder.unused_data, None  # stream's end: ignored)
        return out[0] if len(out) == 1 else b"".join(out)

    def flush(self) -> bytes:
        if self._zlib is None:
            return b""
        try:
            return self._zlib.flush()
        except zlib.error:
            raise InvalidResponse("the compressed answer is corrupt") from None


def _deflate_bits(data: bytes) -> int:
    """zlib-wrapped (as the standard says) or raw deflate (as some servers send)?"""
    if len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0:
        return 15
    return -15
