"""The HTTP/1.1 protocol the gateway serves with: httptools parsing, the app called over ASGI.

uvicorn still runs the process (sockets, workers, lifespan, signals, graceful shutdown); this
replaces its httptools protocol class (`uvicorn.Config(http=...)`), whose per-request work
measured ~121k instructions for a hello-world app (this one: ~100k; a bare httptools protocol
without ASGI: ~29k), and one system call more per response (docs/performance.md). What differs
from uvicorn's:

- one write per response, and per loop iteration of a stream: the status line and headers wait
  for the first body bytes, body bytes for the end of the loop iteration that sent them;
- no timer, event or URL parse per request: the keep-alive timer is armed once per idle spell
  and reads the clock when it fires; a plain path is decoded, not parsed;
- the request line and headers are bounded (`server.max_header_bytes`, 431 beyond), and a
  connection that has not completed a request head within the keep-alive timeout is closed;
- each scope's extensions carry the connection's `ConnectionLost` (see `api/http.py`);
- requests that ask to upgrade (websockets, h2c) are answered over HTTP/1.1, then the
  connection is closed;
- a request the parser rejects gets a JSON error (`invalid_http_request`), not plain text.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections import deque
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import unquote

import httptools
from uvicorn.config import Config
from uvicorn.protocols.utils import get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState

from lockgate.api.http import CONNECTION_LOST, ConnectionLost, Message, Scope, new_request_id
from lockgate.config.models import ServerConfig
from lockgate.errors import BadRequest, GatewayError, openai_error_body

__all__ = ["GatewayHttpProtocol"]

log = logging.getLogger("lockgate")

DEFAULT_MAX_HEAD_BYTES: int = ServerConfig.model_fields["max_header_bytes"].default
BODY_HIGH_WATER = 65_536
"""Bytes of request body buffered, not yet read by the app, before reading pauses; and of
response body held for the end of a loop iteration before it is written at once."""

_ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}
_STATUS_LINES = {
    code.value: f"HTTP/1.1 {code.value} {code.phrase}\r\n".encode() for code in http.HTTPStatus
}
_INVALID_NAMES = re.compile(rb'[\x00-\x20\x7f()<>@,;:\\"/\[\]?={}]')
"""Outside RFC 9110's token characters (header names are checked joined: one search)."""
_INVALID_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class GatewayHttpProtocol(asyncio.Protocol):
    """One client connection: parses requests, runs each in a task, writes the responses.

    Requests pipelined behind one still being answered wait (reading pauses) and run in order.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.keep_alive_s: float = config.timeout_keep_alive
        # `serving.uvicorn_options` passes `server.max_header_bytes` in h11's field of the
        # same meaning (the largest request head), which uvicorn keeps for any protocol.
        self.max_head_bytes: int = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self.parser = httptools.HttpRequestParser(self)
        # Answer a request even when the client closed its side right after sending it.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        self.lost = ConnectionLost()
        self.extensions: dict[str, dict[object, object]] = {CONNECTION_LOST: {"signal": self.lost}}
        self.running: Exchange | None = None
        """The request being answered."""
        self.parsing: Exchange | None = None
        """The request whose body is being read (the running one, or one pipelined behind)."""
        self.pipeline: deque[Exchange] = deque()
        self.reading_paused = False
        self.writing_paused = False
        self.drained: asyncio.Future[None] | None = None
        self.idle_since = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None
        # The request being parsed.
        self.in_head = True
        self.head_bytes = 0
        self.head_tail = b""
        """The last bytes of the previous read of a head: its end may straddle two reads."""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.expect_continue = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.server_state.connections.add(self)  # type: ignore[arg-type]
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.server = get_local_addr(self.transport)
        self.client = get_remote_addr(self.transport)
        self.scheme = "https" if is_ssl(self.transport) else "http"
        self.arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self.lost.fire()
        running = self.running
        if running is not None and not running.finished:
            running.disconnected = True
            running.wake()
        self.pipeline.clear()
        self.resume_writing()
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        if exc is None:
            self.transport.close()
        self.parser = None  # type: ignore[assignment]  # it refers back to this protocol

    def data_received(self, data: bytes) -> None:
        if self.in_head:
            # Counted per read, not per header (a callback more per header would cost every
            # request); only a read that would pass the limit is searched for the head's end.
            room = self.max_head_bytes - self.head_bytes
            if (
                len(data) > room
                and (self.head_tail + data).find(
                    b"\r\n\r\n", 0, len(self.head_tail) + max(room, 0) + 4
                )
                < 0
            ):
                self.reject(
                    BadRequest(
                        f"Request line and headers are larger than the limit of "
                        f"{self.max_head_bytes} bytes",
                        code="request_headers_too_large",
                        status=431,
                    )
                )
                return
            self.head_bytes += len(data)
            self.head_tail = data[-3:]
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Nothing here speaks websockets or h2c: the request is served as plain HTTP, and
            # what follows it on the connection cannot be parsed, so the connection ends.
            last = self.pipeline[-1] if self.pipeline else self.running
            if last is None:
                self.transport.close()
            else:
                last.keep_alive = False  # requests pipelined before it are still answered
        except httptools.HttpParserError as exc:
            self.reject(BadRequest(f"Invalid HTTP request: {exc}", code="invalid_http_request"))

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.expect_continue = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        parser = self.parser
        version = parser.get_http_version()
        method = parser.get_method().decode("ascii")
        url = self.url
        if url[:1] == b"/" and b"?" not in url and b"%" not in url and b"#" not in url:
            raw_path, path, query = url, url.decode("ascii"), b""
        else:
            parsed = httptools.parse_url(url)
            raw_path = parsed.path
            path = raw_path.decode("ascii")
            if "%" in path:
                path = unquote(path)
            query = parsed.query or b""
        scope: Scope = {
            "type": "http",
            "asgi": _ASGI_VERSION,
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": method,
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": self.headers,
            "state": self.app_state.copy(),
            "extensions": self.extensions,
        }
        keep_alive = version != "1.0" and parser.should_keep_alive()
        exchange = Exchange(self, scope, keep_alive, self.expect_continue, method == "HEAD")
        self.parsing = exchange
        if self.running is None:
            self.start(exchange)
        else:
            self.pipeline.append(exchange)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        exchange = self.parsing
        if exchange is None or exchange.finished:
            return  # answered without reading its body: the rest is dropped
        exchange.chunks.append(body)
        exchange.buffered += len(body)
        if exchange.buffered > BODY_HIGH_WATER:
            self.pause_reading()
        exchange.wake()

    def on_message_complete(self) -> None:
        self.in_head = True
        exchange = self.parsing
        self.parsing = None
        if exchange is not None:
            exchange.more_body = False
            exchange.wake()
            if exchange.finished and self.running is None:
                self.idle_since = self.loop.time()  # idle from the early answer's body's end

    # Serving

    def start(self, exchange: Exchange) -> None:
        self.running = exchange
        task = self.loop.create_task(exchange.run(self.app))
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def response_done(self, exchange: Exchange) -> None:
        """The last byte of `exchange`'s response is written: next request, or idle."""
        self.server_state.total_requests += 1
        self.running = None
        if not exchange.keep_alive:
            self.transport.close()
            return
        if self.transport.is_closing():
            return
        if self.pipeline:
            self.start(self.pipeline.popleft())
        else:
            self.arm_idle_timer()
        self.resume_reading()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close when idle, else after the current response."""
        if self.running is None:
            self.transport.close()
        else:
            self.running.keep_alive = False

    async def drain(self) -> None:
        if self.drained is None:
            self.drained = self.loop.create_future()
        await asyncio.shield(self.drained)

    def pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and not self.pipeline:
            self.reading_paused = False
            self.transport.resume_reading()

    def arm_idle_timer(self) -> None:
        self.idle_since = self.loop.time()
        if self.idle_timer is None:
            self.idle_timer = self.loop.call_later(self.keep_alive_s, self.on_idle_timer)

    def on_idle_timer(self) -> None:
        self.idle_timer = None
        if self.running is not None or self.transport.is_closing():
            return  # answering: the response's end arms the timer again
        if not self.in_head:
            # The body of a request answered early (413) is still arriving: let it finish,
            # or the close would reset the connection before the client reads the answer.
            self.arm_idle_timer()
            return
        left = self.idle_since + self.keep_alive_s - self.loop.time()
        if left > 0:
            self.idle_timer = self.loop.call_later(left, self.on_idle_timer)
        else:
            self.transport.close()

    def reject(self, error: GatewayError) -> None:
        """Answer a request that cannot be parsed (unless a response is being written), close."""
        if self.running is None:
            body = openai_error_body(error)
            self.transport.write(
                _STATUS_LINES[error.status]
                + b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
                + b"x-request-id: %b\r\n" % new_request_id().encode()
                + b"connection: close\r\n\r\n"
                + body
            )
        self.transport.close()


class Exchange:
    """One request and its response, as the app sees them through `receive` and `send`."""

    __slots__ = (
        "buffered",
        "chunked",
        "chunks",
        "delivered",
        "disconnected",
        "expect_continue",
        "finished",
        "flush_handle",
        "head_only",
        "keep_alive",
        "length_left",
        "more_body",
        "protocol",
        "scope",
        "started",
        "unsent",
        "unsent_bytes",
        "waiter",
    )

    def __init__(
        self,
        protocol: GatewayHttpProtocol,
        scope: Scope,
        keep_alive: bool,
        expect_continue: bool,
        head_only: bool,
    ) -> None:
        self.protocol: GatewayHttpProtocol | None = protocol
        """Cleared when the app returns, so that no reference cycle outlives the request."""
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.head_only = head_only
        """A HEAD request: headers only, whatever the app sends as body."""
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.more_body = True
        self.delivered = False
        self.waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self.started = False
        self.finished = False
        self.unsent: list[bytes] = []
        """The response's bytes not yet written: one write per loop iteration at most."""
        self.flush_handle: asyncio.Handle | None = None
        self.unsent_bytes = 0
        self.chunked = False
        self.length_left = 0

    async def run(self, app: Any) -> None:
        try:
            try:
                await app(self.scope, self.receive, self.send)
            except BaseException as exc:
                log.error("Exception in ASGI application", exc_info=exc)
            else:
                if not (self.disconnected or self.finished):
                    log.error("ASGI app returned without completing its response")
            if self.disconnected or self.finished:
                return
            if not self.started:
                await self.send_500()
            elif self.protocol is not None:
                if self.flush_handle is not None:
                    self.flush_handle.cancel()
                self.flush()  # what the app did send, then a close: a cut-short response
                self.protocol.transport.close()  # must not look complete
        finally:
            self.protocol = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> Message:
        protocol = self.protocol
        if self.expect_continue and protocol is not None:
            self.expect_continue = False
            if not self.started:
                protocol.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not (self.disconnected or self.finished or protocol is None):
            if not self.delivered and (self.chunks or not self.more_body):
                chunks = self.chunks
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self.chunks = []
                self.buffered = 0
                self.delivered = not self.more_body
                protocol.resume_reading()
                return {"type": "http.request", "body": body, "more_body": self.more_body}
            protocol.resume_reading()
            waiter = self.waiter
            if waiter is None or waiter.done():
                waiter = self.waiter = protocol.loop.create_future()
            # Shielded: another task may wait on the same future (one waiting for the body,
            # one for a disconnect); a cancelled waiter must not cancel it for the other.
            await asyncio.shield(waiter)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        protocol = self.protocol
        if protocol is None or self.disconnected:
            return
        if protocol.writing_paused:
            await protocol.drain()
            if self.disconnected:
                return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', got {kind!r}")
            self.started = True
            self.expect_continue = False
            head = self.response_head(
                message["status"],
                (*protocol.server_state.default_headers, *message.get("headers", ())),
            )
            self.unsent.append(head)  # written with the first body bytes
            return
        if self.finished or kind != "http.response.body":
            raise RuntimeError(f"Unexpected ASGI message {kind!r}")
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        if self.head_only:
            data = b""
        elif self.chunked:
            data = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more_body:
                data += b"0\r\n\r\n"
        else:
            self.length_left -= len(body)
            if self.length_left < 0:
                raise RuntimeError("Response content longer than Content-Length")
            data = body
        self.unsent.append(data)
        if more_body:
            self.unsent_bytes += len(data)
            if self.unsent_bytes > BODY_HIGH_WATER:
                # An app that sends without ever waiting must still meet flow control.
                if self.flush_handle is not None:
                    self.flush_handle.cancel()
                self.flush()
                if protocol.writing_paused:
                    await protocol.drain()
            elif self.flush_handle is None:
                # Written once the app waits for something: what it sends before then (the
                # rest of a stream that arrived whole, its end) goes out in the same write.
                self.flush_handle = protocol.loop.call_soon(self.flush)
            return
        if self.flush_handle is not None:
            self.flush_handle.cancel()
        self.flush()
        if self.length_left > 0 and not self.head_only:
            raise RuntimeError("Response content shorter than Content-Length")
        self.finished = True
        self.wake()
        protocol.response_done(self)

    def flush(self) -> None:
        self.flush_handle = None
        unsent = self.unsent
        self.unsent = []
        self.unsent_bytes = 0
        protocol = self.protocol
        if protocol is not None and not self.disconnected:
            protocol.transport.write(unsent[0] if len(unsent) == 1 else b"".join(unsent))

    def response_head(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The status line and headers; sets how the body is framed."""
        status_line = _STATUS_LINES.get(status)
        if status_line is None:
            status_line = b"HTTP/1.1 %d \r\n" % status
        lines = [status_line]
        names = []
        framed = False
        close = False
        for name, value in headers:
            name = name.lower()
            names.append(name)
            if _INVALID_VALUE.search(value):
                raise RuntimeError(f"Invalid value for HTTP header {name!r}")
            if name == b"content-length":
                self.length_left = int(value)
                framed = True
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.chunked = framed = True
            elif name == b"connection" and b"close" in value.lower():
                self.keep_alive = False
                close = True
            lines.append(b"%b: %b\r\n" % (name, value))
        if _INVALID_NAMES.search(b"".join(names)) or not all(names):
            raise RuntimeError("Invalid HTTP header name")
        if not self.keep_alive and not close:
            lines.append(b"connection: close\r\n")
        if not framed and not self.head_only and status not in (204, 304) and status >= 200:
            self.chunked = True
            lines.append(b"transfer-encoding: chunked\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    async def send_500(self) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"connection", b"close"),
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": b"Internal Server Error"})
