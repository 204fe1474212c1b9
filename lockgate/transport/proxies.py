"""Outbound HTTP proxies, read from the environment the way curl reads it.

`HTTPS_PROXY` serves https providers and `HTTP_PROXY` http ones; `ALL_PROXY` either, when its
own is unset; lower-case names win over upper-case ones. `NO_PROXY` lists what is reached
directly: host names separated by commas or spaces (each also matching its subdomains; leading
and trailing dots are ignored), IP addresses or CIDR ranges, any of them with `:port` to match
one port only; `*` alone for everything. Only `http://` proxies are supported. An https
provider is reached through a `CONNECT` tunnel (TLS end to end: the proxy sees only the host
name); an http provider's request goes to the proxy with the whole URL as its target.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "MAX_TUNNEL_HEAD_BYTES",
    "Proxies",
    "Proxy",
    "ProxyConfigError",
    "ProxyRefused",
    "ProxyUnreachable",
    "aiohttp_proxy",
    "open_tunnel",
]

MAX_TUNNEL_HEAD_BYTES = 16 * 1024
"""Largest answer head accepted from a proxy to `CONNECT`."""


class ProxyConfigError(ValueError):
    """A proxy variable in the environment cannot be used; the message names it."""


class ProxyUnreachable(ConnectionError):
    """The proxy itself could not be connected to."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.address = address


class ProxyRefused(ConnectionError):
    """The proxy answered `CONNECT` with something other than 2xx (`status` None: not in
    HTTP), or answered an http request with 407."""

    def __init__(self, address: str, status: int | None) -> None:
        super().__init__(address, status)
        self.address = address
        self.status = status


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    credentials: tuple[str, str] | None
    """User and password, from the proxy URL."""
    authorization: str | None
    """The `Proxy-Authorization` value made of them."""
    variable: str
    """The environment variable it came from."""

    @property
    def address(self) -> str:
        """`host:port`, for messages: never the credentials."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The proxy's URL without its credentials."""
        return f"http://{self.address}"


class Proxies:
    """Which proxy, if any, each origin is reached through; decided once per origin."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._by_scheme = {scheme: _proxy_for_scheme(environ, scheme) for scheme in _SCHEMES}
        no_proxy = _no_proxy(environ)
        self._everything_direct = no_proxy == "*"
        self._bypass = [_Bypass.parse(entry) for entry in no_proxy.replace(",", " ").split()]
        self._decided: dict[tuple[str, str, int], Proxy | None] = {}

    @property
    def configured(self) -> bool:
        return any(self._by_scheme.values())

    def describe(self) -> str | None:
        """The start-up report's line (None without proxies)."""
        used = [
            f"{proxy.address} for {scheme} ({proxy.variable})"
            for scheme, proxy in self._by_scheme.items()
            if proxy is not None
        ]
        if not used:
            return None
        direct = "*" if self._everything_direct else ",".join(b.text for b in self._bypass)
        return f"outbound proxy: {', '.join(used)}; reached directly: {direct or 'none'}"

    def reach_directly(self, scheme: str, host: str, port: int) -> None:
        """Never proxy this origin (the gateway's own in-process simulator)."""
        self._decided[(scheme, host, port)] = None

    def for_url(self, url: str) -> Proxy | None:
        """The proxy for an http(s) URL (an OIDC key set, a webhook)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES or not parts.hostname:
            return None
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            return None
        return self.for_origin(scheme, parts.hostname, port)

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        key = (scheme, host, port)
        if key in self._decided:
            return self._decided[key]
        proxy = self._by_scheme.get(scheme)
        if proxy is not None and (
            self._everything_direct or any(bypass.matches(host, port) for bypass in self._bypass)
        ):
            proxy = None
        self._decided[key] = proxy
        return proxy


_SCHEMES = ("https", "http")


def _first(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    for variable in (name.lower(), name.upper()):
        value = environ.get(variable, "").strip()
        if value:
            return variable, value
    return None


def _no_proxy(environ: Mapping[str, str]) -> str:
    found = _first(environ, "no_proxy")
    return "" if found is None else found[1]


def _proxy_for_scheme(environ: Mapping[str, str], scheme: str) -> Proxy | None:
    found = _first(environ, f"{scheme}_proxy") or _first(environ, "all_proxy")
    if found is None:
        return None
    variable, value = found
    # `host:port` without a scheme means an http proxy, as in curl.
    parts = urlsplit(value if "://" in value else f"http://{value}")
    where = f"{variable} (a {parts.scheme}:// proxy)" if parts.scheme else variable
    if parts.scheme.lower() != "http":
        raise ProxyConfigError(
            f"{where}: only http:// proxies are supported (https providers are still "
            "reached with TLS end to end, through a CONNECT tunnel)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        # Most likely a password with an unencoded `/`, `?` or `#`: the rest of it would be
        # read as the host (and printed as such). Never quote the value.
        raise ProxyConfigError(
            f"{variable}: the proxy URL has more than scheme, user, password, host and port "
            "(percent-encode '/', '?' and '#' in the user and password)"
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ProxyConfigError(f"{variable}: the proxy's port is not a number") from None
    if not host or any(c in host for c in "\r\n\x00 /\\@"):
        raise ProxyConfigError(f"{variable}: the proxy URL has no usable host")
    credentials = authorization = None
    if parts.username is not None:
        if not (unquote(parts.username) + unquote(parts.password or "")).isascii():
            # aiohttp (webhooks, OIDC) can send only Latin-1 and the tunnel sends UTF-8:
            # refused rather than sent two different ways.
            raise ProxyConfigError(f"{variable}: the proxy's user and password must be ASCII")
        credentials = (unquote(parts.username), unquote(parts.password or ""))
        pair = ":".join(credentials).encode()
        authorization = "Basic " + base64.b64encode(pair).decode()
    return Proxy(host, port or 80, credentials, authorization, variable)


@dataclass(frozen=True, slots=True)
class _Bypass:
    """One `NO_PROXY` entry."""

    text: str
    """As written."""
    name: str
    """A host name suffix, lower case, without leading or trailing dots."""
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    port: int | None

    @classmethod
    def parse(cls, text: str) -> _Bypass:
        entry = text.lower()
        port = None
        head, colon, tail = entry.rpartition(":")
        if colon and tail.isdigit() and (head.endswith("]") or ":" not in head):
            entry, port = head, int(tail)
        entry = entry.removeprefix("[").removesuffix("]")
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            network = None
        return cls(text, entry.strip("."), network, port)

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network
            except ValueError:
                return False
        host = host.lower().rstrip(".")
        return bool(self.name) and (host == self.name or host.endswith("." + self.name))


def aiohttp_proxy(proxies: Proxies | None, url: str) -> dict[str, Any]:
    """aiohttp's `proxy` argument for a request to `url` ({}: go direct). The credentials ride
    in the proxy URL: aiohttp sends them to the proxy alone, for http and https alike."""
    proxy = None if proxies is None else proxies.for_url(url)
    if proxy is None:
        return {}
    if proxy.credentials is None:
        return {"proxy": proxy.url}
    user, password = (quote(part, safe="") for part in proxy.credentials)
    return {"proxy": f"http://{user}:{password}@{proxy.address}"}


async def open_tunnel(proxy: Proxy, host: str, port: int) -> asyncio.Transport:
    """A connection to `host:port` through the proxy, ready for TLS: the transport, whose
    protocol the caller replaces (with `loop.start_tls`)."""
    loop = asyncio.get_running_loop()
    try:
        transport, handshake = await loop.create_connection(_Handshake, proxy.host, proxy.port)
    except OSError as exc:
        raise ProxyUnreachable(proxy.address) from exc
    try:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
        if proxy.authorization is not None:
            head += f"Proxy-Authorization: {proxy.authorization}\r\n"
        transport.write(f"{head}\r\n".encode())
        status = _status(await handshake.answer)
        if status is None or not 200 <= status < 300:
            raise ProxyRefused(proxy.address, status)
    except BaseException:
        transport.close()
        raise
    return transport


_HEAD_END = re.compile(rb"\r?\n\r?\n")
"""The blank line that ends a head (some proxies end lines with a bare LF)."""


class _Handshake(asyncio.Protocol):
    """Reads the proxy's answer head to `CONNECT` (b"" if it closed first or sent too much)."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._received = bytearray()

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self._received += data
        match = _HEAD_END.search(self._received)
        if match is None:
            if len(self._received) > MAX_TUNNEL_HEAD_BYTES:
                self.answer.set_result(b"")
            return
        head = bytes(self._received[: match.end()])
        status = _status(head)
        if match.end() < len(self._received) and status is not None and 200 <= status < 300:
            head = b""  # bytes after a 2xx head: the provider's, before TLS even began
        self.answer.set_result(head)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_result(b"")


def _status(head: bytes) -> int | None:
    """The status code of `HTTP/1.x NNN [reason]` (the reason may be missing)."""
    parts = head.split(b"\n", 1)[0].split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return None
    return int(parts[1])
