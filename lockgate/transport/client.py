"""The shared upstream HTTP client: one aiohttp session with a keep-alive pool.

Transport failures become gateway errors that name the provider, never its URL (a URL may carry a
key in its query) or the library's message (which may quote it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import aiohttp

from lockgate.errors import UpstreamTimeout, UpstreamUnavailable
from lockgate.providers.base import UpstreamRequest

__all__ = ["UpstreamClient", "UpstreamResponse", "UpstreamStream"]

log = logging.getLogger("lockgate.transport")
T = TypeVar("T")

MAX_ERROR_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class UpstreamStream:
    """An open streaming response; iterate for raw chunks, each within the idle timeout."""

    def __init__(
        self, response: aiohttp.ClientResponse, provider: str, idle_timeout_s: float
    ) -> None:
        self._response = response
        self._provider = provider
        self._idle_timeout_s = idle_timeout_s
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read_error_body(self) -> bytes:
        return await _guard(self._provider, self._idle_timeout_s, _read_bounded(self._response))

    async def next_chunk(self) -> bytes:
        """The next bytes from the provider; b"" at the end of the stream."""
        return await _guard(self._provider, self._idle_timeout_s, self._response.content.readany())

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.next_chunk():
            yield chunk

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
        return await _guard(provider, timeout_s, self._send(request))

    async def _send(self, request: UpstreamRequest) -> UpstreamResponse:
        async with self.session.post(
            request.url, data=request.body, headers=request.headers
        ) as response:
            body = await response.read()
            return UpstreamResponse(response.status, response.headers, body)

    async def open_stream(
        self, request: UpstreamRequest, provider: str, timeout_s: float, idle_timeout_s: float
    ) -> UpstreamStream:
        """POST and return once the response headers arrived (within `timeout_s`)."""
        response = await _guard(
            provider,
            timeout_s,
            self.session.post(request.url, data=request.body, headers=request.headers),
        )
        return UpstreamStream(response, provider, idle_timeout_s)


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    body = await response.content.read(MAX_ERROR_BODY)
    response.close()
    return body


async def _guard(provider: str, timeout_s: float, awaitable: Awaitable[T]) -> T:
    """Await `awaitable` within `timeout_s`, turning transport failures into gateway errors."""
    try:
        async with asyncio.timeout(timeout_s):
            return await awaitable
    except TimeoutError:
        raise UpstreamTimeout(
            f"Provider '{provider}' did not answer within {timeout_s:g}s"
        ) from None
    except aiohttp.ClientConnectorError as exc:
        log.warning("cannot connect to provider %s: %s", provider, type(exc).__name__)
        raise UpstreamUnavailable(f"Could not connect to provider '{provider}'") from None
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError):
        raise UpstreamUnavailable(
            f"Provider '{provider}' closed the connection before answering completely"
        ) from None
    except aiohttp.ClientError as exc:
        log.warning("request to provider %s failed: %s", provider, type(exc).__name__)
        raise UpstreamUnavailable(
            f"Request to provider '{provider}' failed ({type(exc).__name__})"
        ) from None
