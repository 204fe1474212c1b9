"""The shared upstream HTTP client: one aiohttp session with a keep-alive pool.

Transport failures become gateway errors that name the provider, never its URL (a URL may carry a
key in its query) or the library's message (which may quote it). Timeouts are aiohttp's own
(a total for whole answers, a read timeout between stream chunks): they cost no extra task or
timer per chunk on the hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

import aiohttp

from lockgate.errors import GatewayError, UpstreamServerError, UpstreamTimeout, UpstreamUnavailable
from lockgate.providers.base import UpstreamRequest
from lockgate.transport.propagation import PROPAGATION

__all__ = ["UpstreamClient", "UpstreamResponse", "UpstreamStream"]

log = logging.getLogger("lockgate.transport")

MAX_ERROR_BODY = 64 * 1024
MAX_ANSWER_BODY = 256 * 1024 * 1024
"""Largest non-streaming answer read from a provider (a big embeddings batch stays well under)."""
_TRANSPORT_ERRORS = (TimeoutError, aiohttp.ClientError)


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class UpstreamStream:
    """An open streaming response: read chunks until b"" (each within the idle timeout)."""

    __slots__ = ("_idle_timeout_s", "_provider", "_response", "headers", "status")

    def __init__(
        self, response: aiohttp.ClientResponse, provider: str, idle_timeout_s: float
    ) -> None:
        self._response = response
        self._provider = provider
        self._idle_timeout_s = idle_timeout_s
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read_error_body(self) -> bytes:
        try:
            return await self._response.content.read(MAX_ERROR_BODY)
        except _TRANSPORT_ERRORS as exc:
            raise _gateway_error(exc, self._provider, self._idle_timeout_s) from None
        finally:
            self._response.close()

    async def next_chunk(self) -> bytes:
        """The next bytes from the provider; b"" at the end of the stream."""
        try:
            return await self._response.content.readany()
        except _TRANSPORT_ERRORS as exc:
            raise _gateway_error(exc, self._provider, self._idle_timeout_s) from None

    def close(self) -> None:
        """Return a finished connection to the pool; drop an unfinished one."""
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()

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
    """Sends upstream requests over a shared connection pool."""

    def __init__(self, connect_timeout_s: float) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._stream_timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout_s),
            skip_auto_headers=("user-agent",),
            auto_decompress=True,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient.start() was not called")
        return self._session

    async def send(
        self, request: UpstreamRequest, provider: str, timeout_s: float
    ) -> UpstreamResponse:
        """POST and read the whole answer within `timeout_s`."""
        timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=self._connect_timeout_s)
        try:
            async with self.session.post(
                request.url, data=request.body, headers=_headers(request), timeout=timeout
            ) as response:
                length = response.content_length
                if length is not None and length <= MAX_ANSWER_BODY:
                    body = await response.read()
                else:
                    body = await _read_capped(response, provider)
                return UpstreamResponse(response.status, response.headers, body)
        except _TRANSPORT_ERRORS as exc:
            raise _gateway_error(exc, provider, timeout_s) from None

    async def open_stream(
        self, request: UpstreamRequest, provider: str, idle_timeout_s: float
    ) -> UpstreamStream:
        """POST and return once the response headers arrived.

        No total timeout here: the caller bounds the wait for the first content; every later
        gap between chunks is bounded by `idle_timeout_s`.
        """
        timeout = self._stream_timeouts.get(idle_timeout_s)
        if timeout is None:  # one per configured idle timeout, built once
            timeout = self._stream_timeouts[idle_timeout_s] = aiohttp.ClientTimeout(
                total=None, sock_connect=self._connect_timeout_s, sock_read=idle_timeout_s
            )
        try:
            response = await self.session.post(
                request.url, data=request.body, headers=_headers(request), timeout=timeout
            )
        except _TRANSPORT_ERRORS as exc:
            raise _gateway_error(exc, provider, idle_timeout_s) from None
        return UpstreamStream(response, provider, idle_timeout_s)


def _headers(request: UpstreamRequest) -> Mapping[str, str]:
    """The request's headers, plus the trace context when this call is traced."""
    propagated = PROPAGATION.get()
    return request.headers if propagated is None else {**request.headers, **propagated}


async def _read_capped(response: aiohttp.ClientResponse, provider: str) -> bytes:
    """The body of an answer without a usable length, refusing one over MAX_ANSWER_BODY."""
    parts, size = [], 0
    async for part in response.content.iter_any():
        size += len(part)
        if size > MAX_ANSWER_BODY:
            raise UpstreamServerError(
                f"Provider '{provider}' answered with more than {MAX_ANSWER_BODY} bytes",
                code="upstream_answer_too_large",
            )
        parts.append(part)
    return b"".join(parts)


def _gateway_error(exc: BaseException, provider: str, timeout_s: float) -> GatewayError:
    """The gateway error for a transport failure; never quotes the library's message."""
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts derive from it too
        return UpstreamTimeout(f"Provider '{provider}' did not answer within {timeout_s:g}s")
    if isinstance(exc, aiohttp.ClientConnectorError):
        log.warning("cannot connect to provider %s: %s", provider, type(exc).__name__)
        return UpstreamUnavailable(f"Could not connect to provider '{provider}'")
    if isinstance(
        exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientOSError
    ):
        return UpstreamUnavailable(
            f"Provider '{provider}' closed the connection before answering completely"
        )
    log.warning("request to provider %s failed: %s", provider, type(exc).__name__)
    return UpstreamUnavailable(f"Request to provider '{provider}' failed ({type(exc).__name__})")
