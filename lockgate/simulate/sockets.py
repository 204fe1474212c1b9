"""Listening sockets, bound up front so the real port is known before serving."""

from __future__ import annotations

import socket

BACKLOG = 2048


def bind_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound (not yet listening) TCP socket for ``host:port``."""
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise RuntimeError("SO_REUSEPORT is not available on this platform; use one worker")
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    sock = bind_socket(host, port, reuse_port=reuse_port)
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def bound_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def url_host(host: str) -> str:
    """A host usable in a URL: wildcard binds map to loopback, IPv6 gets brackets."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
