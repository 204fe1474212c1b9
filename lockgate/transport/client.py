"""The shared upstream HTTP client: keep-alive connections to each provider (`pool.py`, `http1.py`).

Transport failures become gateway errors that name the provider, never its URL (a URL may carry a
key in its query) or the underlying exception's message (which may quote it). A whole answer is
bounded by one timeout; a stream by an idle timeout per read, with no timer at all when the bytes
are already there.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

from lockgate.errors import GatewayError, UpstreamServerError, UpstreamTimeout, UpstreamUnavailable
from lockgate.providers.base import UpstreamRequest
from lockgate.transport.http1 import (
    Exchange,
    InvalidResponse,
    PeerClosed,
    UnsafeRequest,
    origin_of,
    request_head,
)
from lockgate.transport.pool import ConnectionPool
from lockgate.transport.propagation import PROPAGATION
from lockgate.transport.proxies import Proxies, ProxyRefused, ProxyUnreachable

__all__ = ["UpstreamClient", "UpstreamResponse", "UpstreamStream"]

log = logging.getLogger("lockgate.transport")

MAX_ERROR_BODY = 64 * 1024
MAX_ANSWER_BODY = 256 * 1024 * 1024
"""Largest non-streaming answer read from a provider (a big embeddings batch stays well under)."""


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes


class UpstreamStream:
    """An open streaming response: read chunks until b"" (each within the idle timeout)."""

    __slots__ = ("_exchange", "_idle_timeout_s", "_provider", "headers", "status")

    def __init__(self, exchange: Exchange, provider: str, idle_timeout_s: float) -> None:
        self._exchange = exchange
        self._provider = provider
        self._idle_timeout_s = idle_timeout_s
        self.status = exchange.status
        self.headers: Mapping[str, str] = exchange.headers

    async def read_error_body(self) -> bytes:
        try:
            return await _read_body(self._exchange, self._provider, MAX_ERROR_BODY, truncate=True)
        except _FAILURES as exc:
            raise _gateway_error(exc, self._provider, self._idle_timeout_s) from None
        finally:
            self._exchange.release()

    async def next_chunk(self) -> bytes:
        """The next bytes from the provider; b"" at the end of the stream."""
        try:
            return await self._exchange.read_chunk(self._idle_timeout_s)
        except _FAILURES as exc:
            raise _gateway_error(exc, self._provider, self._idle_timeout_s) from None

    def close(self) -> None:
        """Return a finished connection to the pool; drop an unfinished one."""
        self._exchange.release()

    async def __aenter__(self) -> UpstreamStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class UpstreamClient:
    """Sends upstream requests over a shared connection pool, through the environment's
    proxies when `proxies` has any (`proxies.py`)."""

    def __init__(self, connect_timeout_s: float, proxies: Proxies | None = None) -> None:
        self._proxies = proxies if proxies is not None and proxies.configured else None
        self._pool = ConnectionPool(connect_timeout_s)

    def reach_directly(self, url: str) -> None:
        """Never send requests for this URL's origin through a proxy."""
        if self._proxies is not None:
            origin = origin_of(url)
            self._proxies.reach_directly(origin.scheme, origin.host, origin.port)

    async def close(self) -> None:
        self._pool.close()

    async def send(
        self, request: UpstreamRequest, provider: str, timeout_s: float
    ) -> UpstreamResponse:
        """POST and read the whole answer within `timeout_s`."""
        exchange: Exchange | None = None
        try:
            async with asyncio.timeout(timeout_s):
                exchange = await self._start(request)
                await exchange.wait_head()
                if exchange.status == 407 and self._proxies is not None:
                    self._check_proxy_answer(request)
                body = await _read_body(exchange, provider, MAX_ANSWER_BODY, truncate=False)
            return UpstreamResponse(exchange.status, exchange.headers, body)
        except _FAILURES as exc:
            raise _gateway_error(exc, provider, timeout_s) from None
        finally:
            if exchange is not None:
                exchange.release()  # a cancelled or failed exchange closes its connection

    async def open_stream(
        self, request: UpstreamRequest, provider: str, idle_timeout_s: float
    ) -> UpstreamStream:
        """POST and return once the response head arrived.

        No total timeout here: the caller bounds the wait for the first content; the wait for
        the head and every gap between chunks are bounded by `idle_timeout_s`.
        """
        exchange: Exchange | None = None
        try:
            exchange = await self._start(request)
            await exchange.wait_head(idle_timeout_s)
            if exchange.status == 407 and self._proxies is not None:
                self._check_proxy_answer(request)
        except BaseException as exc:
            if exchange is not None:
                exchange.release()
            if isinstance(exc, _FAILURES):
                raise _gateway_error(exc, provider, idle_timeout_s) from None
            raise
        return UpstreamStream(exchange, provider, idle_timeout_s)

    def _check_proxy_answer(self, request: UpstreamRequest) -> None:
        """A 407 to an http request sent through a proxy is the proxy's own answer (it wants
        credentials), not the provider's."""
        assert self._proxies is not None
        origin = origin_of(request.url)
        proxy = self._proxies.for_origin(*origin.key)
        if proxy is not None and origin.scheme == "http":
            raise ProxyRefused(proxy.address, 407)

    async def _start(self, request: UpstreamRequest) -> Exchange:
        origin = origin_of(request.url)
        proxies = self._proxies
        proxy = None if proxies is None else proxies.for_origin(*origin.key)
        head = request_head(origin, _headers(request), len(request.body), proxy)
        return await self._pool.start(origin, head, request.body, proxy)


def _headers(request: UpstreamRequest) -> Mapping[str, str]:
    """The request's headers, plus the trace context when this call is traced."""
    propagated = PROPAGATION.get()
    return request.headers if propagated is None else {**request.headers, **propagated}


async def _read_body(exchange: Exchange, provider: str, limit: int, *, truncate: bool) -> bytes:
    """The rest of the body, up to `limit` bytes: cut there, or refused when not `truncate`."""
    parts, size = [], 0
    while chunk := await exchange.read_chunk():
        size += len(chunk)
        if size > limit:
            if truncate:
                parts.append(chunk[: limit - size])
                break
            raise UpstreamServerError(
                f"Provider '{provider}' answered with more than {limit} bytes",
                code="upstream_answer_too_large",
            )
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


_FAILURES = (TimeoutError, OSError, InvalidResponse, UnsafeRequest)
"""ProxyRefused and ProxyUnreachable are OSErrors (connection errors)."""


def _gateway_error(exc: BaseException, provider: str, timeout_s: float) -> GatewayError:
    """The gateway error for a transport failure; never quotes the exception's message."""
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"Provider '{provider}' did not answer within {timeout_s:g}s")
    if isinstance(exc, PeerClosed | ConnectionResetError | BrokenPipeError):
        return UpstreamUnavailable(
            f"Provider '{provider}' closed the connection before answering completely"
        )
    if isinstance(exc, InvalidResponse):
        log.warning("provider %s sent an invalid HTTP answer: %s", provider, exc)
        return UpstreamServerError(
            f"Provider '{provider}' sent an invalid HTTP answer", code="upstream_invalid_response"
        )
    if isinstance(exc, UnsafeRequest):
        return UpstreamServerError(
            f"The request to provider '{provider}' cannot be sent: {exc}",
            code="upstream_bad_config",
        )
    if isinstance(exc, ProxyUnreachable):
        log.warning(
            "cannot connect to the proxy %s for provider %s: %s",
            exc.address,
            provider,
            type(exc.__cause__).__name__,
        )
        return UpstreamUnavailable(f"Could not connect to the proxy for provider '{provider}'")
    if isinstance(exc, ProxyRefused):
        answer = "no HTTP answer" if exc.status is None else f"HTTP {exc.status}"
        log.warning("the proxy %s refused provider %s: %s", exc.address, provider, answer)
        return UpstreamUnavailable(
            f"The proxy refused the connection to provider '{provider}' ({answer})"
        )
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        log.warning("TLS with provider %s failed: %s", provider, type(exc).__name__)
        return UpstreamUnavailable(f"TLS with provider '{provider}' failed ({type(exc).__name__})")
    log.warning("cannot connect to provider %s: %s", provider, type(exc).__name__)
    return UpstreamUnavailable(f"Could not connect to provider '{provider}'")
