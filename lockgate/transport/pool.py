"""Keep-alive connections to the providers, per origin: taken from the pool or opened (directly,
through an http proxy, or through a `CONNECT` tunnel), given back after a clean answer, closed
when idle for too long."""

from __future__ import annotations

import asyncio
import ssl

from lockgate.transport.http1 import Connection, Exchange, Origin
from lockgate.transport.proxies import Proxy, ProxyUnreachable, open_tunnel

__all__ = ["KEEPALIVE_S", "ConnectionPool"]

KEEPALIVE_S = 30.0
"""An idle connection older than this is closed rather than reused (servers drop them too)."""


class ConnectionPool:
    """Idle keep-alive connections per origin; a request takes the newest or opens one.

    Idle connections older than `KEEPALIVE_S` are closed by a sweep that runs while any are idle.
    """

    def __init__(self, connect_timeout_s: float) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._all: set[Connection] = set()
        self._tls: ssl.SSLContext | None = None
        self._sweep: asyncio.TimerHandle | None = None

    async def start(
        self, origin: Origin, head: bytes, body: bytes, proxy: Proxy | None = None
    ) -> Exchange:
        """Send a request (through `proxy`, when given); the exchange's head and body are then
        read from it."""
        loop = asyncio.get_running_loop()
        connection = self._take(origin.key, loop.time())
        if connection is None:
            connection = await self._connect(origin, loop, proxy)
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
            if not connection.usable:
                continue
            if now - connection.idle_since > KEEPALIVE_S:
                connection.close()
                continue
            return connection
        return None

    async def _connect(
        self, origin: Origin, loop: asyncio.AbstractEventLoop, proxy: Proxy | None
    ) -> Connection:
        tls = None
        if origin.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
                self._tls.set_alpn_protocols(["http/1.1"])
            tls = self._tls
        async with asyncio.timeout(self._connect_timeout_s):
            if proxy is None:
                _, connection = await loop.create_connection(
                    lambda: Connection(self, origin.key),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
            elif tls is None:
                try:
                    _, connection = await loop.create_connection(
                        lambda: Connection(self, origin.key), proxy.host, proxy.port
                    )
                except OSError as exc:
                    raise ProxyUnreachable(proxy.address) from exc
            else:
                connection = Connection(self, origin.key)
                tunnel = await open_tunnel(proxy, origin.host, origin.port)
                try:
                    secured = await loop.start_tls(
                        tunnel, connection, tls, server_hostname=origin.host
                    )
                except BaseException:
                    tunnel.close()
                    raise
                assert secured is not None
                connection.connection_made(secured)
        self._all.add(connection)
        return connection

    def put(self, connection: Connection) -> None:
        self._idle.setdefault(connection.key, []).append(connection)
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(KEEPALIVE_S, self._close_stale)

    def _close_stale(self) -> None:
        self._sweep = None
        now = asyncio.get_running_loop().time()
        for key, idle in list(self._idle.items()):
            kept = [c for c in idle if c.usable and now - c.idle_since <= KEEPALIVE_S]
            for connection in idle:
                if connection not in kept:
                    connection.close()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]
        if self._idle:
            self._sweep = asyncio.get_running_loop().call_later(KEEPALIVE_S, self._close_stale)

    def forget(self, connection: Connection) -> None:
        self._all.discard(connection)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connection in list(self._all):
            connection.close()
        self._all.clear()
        self._idle.clear()
