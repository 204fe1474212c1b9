"""Low-level connection tricks: noticing a vanished client, closing abruptly."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from aiohttp import web

# How often a hanging/stalled handler checks whether the client is still there.
# A runner with handler_cancellation=True cancels the handler immediately; the
# poll is the fallback for apps mounted by runners that do not.
DISCONNECT_POLL_S = 0.05
_LINGER_RESET = struct.pack("ii", 1, 0)


class ConnectionClosed(Exception):
    """The handler cannot answer because the connection is gone.

    ``by_client`` tells whether the client went away (counted as a
    cancellation) or the simulator closed it on purpose (reset/truncate).
    """

    def __init__(self, *, by_client: bool) -> None:
        super().__init__("client disconnected" if by_client else "connection closed by simulator")
        self.by_client = by_client


def client_gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def wait_for_disconnect(request: web.BaseRequest) -> None:
    """Block until the client goes away, then raise :class:`ConnectionClosed`."""
    # Polling: aiohttp offers no "connection lost" event to await.
    while not client_gone(request):  # noqa: ASYNC110
        await asyncio.sleep(DISCONNECT_POLL_S)
    raise ConnectionClosed(by_client=True)


async def sleep_while_connected(request: web.BaseRequest, seconds: float) -> None:
    """``asyncio.sleep`` that ends early with :class:`ConnectionClosed` if the client leaves."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        if client_gone(request):
            raise ConnectionClosed(by_client=True)
        await asyncio.sleep(min(remaining, DISCONNECT_POLL_S))


def reset_connection(request: web.BaseRequest) -> None:
    """Drop the connection with a TCP RST and no response bytes at all."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Without SO_LINGER it still closes abruptly, just with FIN instead of RST.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


async def close_after_flush(request: web.BaseRequest, max_wait_s: float = 1.0) -> None:
    """Close the connection mid-response, after what was written reached the socket.

    ``abort()`` discards the transport's user-space buffer, so wait for it to
    drain first: the client must see every chunk sent before the cut.
    """
    transport = request.transport
    if transport is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait_s
    while transport.get_write_buffer_size() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    transport.abort()
