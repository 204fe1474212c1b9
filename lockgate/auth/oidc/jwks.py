"""One issuer's signing keys: discovery, JWKS fetch, cache, and refetch on an unknown key id.

A token whose key id is known and whose keys are fresh is verified without any I/O. Otherwise
the keys are fetched again, under three rules that keep the issuer safe from us and us safe from
the issuer:

- one fetch in flight per issuer: concurrent callers await the same fetch;
- no new fetch until `min_refetch_s` after the last one ended, whether it succeeded or not, so
  tokens carrying made-up key ids cannot turn the gateway into a tool to hammer the issuer;
- every request is bounded in time and size, and any failure is recorded (see `status`) and
  means "no key" to the caller (401), never an error of the gateway.

When a refresh fails the keys already held stay in use, as go-oidc and Envoy do: an issuer
outage does not lock out callers whose keys are known. A successful fetch replaces the whole set,
so a key the issuer removed stops working at the next refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
import orjson

from lockgate.auth.oidc.jwk import Algorithm, VerificationKey, parse_jwks
from lockgate.transport.proxies import Proxies, aiohttp_proxy

__all__ = ["IssuerKeys"]

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 512 * 1024


class FetchError(Exception):
    """The issuer answered, but not with what OIDC discovery promises."""


class IssuerKeys:
    """The key cache of one issuer (`issuer` as configured, without a trailing slash)."""

    def __init__(
        self,
        issuer: str,
        session: aiohttp.ClientSession,
        *,
        cache_s: float,
        min_refetch_s: float,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        proxies: Proxies | None = None,
    ) -> None:
        self.issuer = issuer
        self._session = session
        self._proxies = proxies
        self._cache_s = cache_s
        self._min_refetch_s = min_refetch_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        self._keys: dict[tuple[str, Algorithm], VerificationKey] = {}
        self._fetched_at: float | None = None  # clock time of the last successful fetch
        self._attempt_ended_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self.jwks_uri: str | None = None
        self.last_success: datetime | None = None
        self.last_error: str | None = None

    async def get(self, kid: str, algorithm: Algorithm) -> VerificationKey | None:
        """The key that verifies `algorithm` signatures under `kid`, if the issuer has one."""
        key = self._keys.get((kid, algorithm))
        if key is not None and self._fresh():
            return key
        await self.refresh()
        return self._keys.get((kid, algorithm))

    async def refresh(self) -> None:
        """Fetch the keys again unless a fetch is running (join it) or ended too recently."""
        task = self._inflight
        if task is None:
            ended = self._attempt_ended_at
            if ended is not None and self._clock() - ended < self._min_refetch_s:
                return
            task = self._inflight = asyncio.get_running_loop().create_task(self._fetch())
        # Shielded: a caller that goes away (client disconnect) must not cancel the others' fetch.
        await asyncio.shield(task)

    def prefetch(self) -> None:
        """Start a refresh in the background (at startup); failures are logged, never raised."""
        if self._inflight is None:
            self._inflight = asyncio.get_running_loop().create_task(self._fetch())

    async def close(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def status(self) -> dict[str, object]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "keys": len(self._keys),
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_error": self.last_error,
        }

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self._cache_s

    async def _fetch(self) -> None:
        try:
            jwks_uri = await self._discover()
            keys = parse_jwks(await self._get_json(jwks_uri, "JWKS"))
        except (aiohttp.ClientError, TimeoutError, FetchError, ValueError) as error:
            self.last_error = _describe(error)
            log.warning(
                "OIDC issuer %s: cannot fetch signing keys: %s", self.issuer, self.last_error
            )
        else:
            self._keys = keys
            self.jwks_uri = jwks_uri
            self._fetched_at = self._clock()
            self.last_success = datetime.now(UTC)
            self.last_error = None if keys else "the JWKS holds no usable RS256 or ES256 key"
            if not keys:
                log.warning("OIDC issuer %s: %s", self.issuer, self.last_error)
        finally:
            self._attempt_ended_at = self._clock()
            self._inflight = None

    async def _discover(self) -> str:
        document = await self._get_json(self.issuer + DISCOVERY_PATH, "discovery document")
        if not isinstance(document, dict):
            raise FetchError("the discovery document is not a JSON object")
        issuer = document.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != self.issuer:
            raise FetchError("the discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise FetchError("the discovery document has no http(s) jwks_uri")
        if self.issuer.startswith("https://") and not jwks_uri.startswith("https://"):
            raise FetchError("the jwks_uri of an https issuer must be https")
        return jwks_uri

    async def _get_json(self, url: str, what: str) -> object:
        async with self._session.get(
            url,
            timeout=self._timeout,
            headers={"accept": "application/json"},
            **aiohttp_proxy(self._proxies, url),
        ) as response:
            if response.status != 200:
                raise FetchError(f"{what}: HTTP {response.status}")
            if (response.content_length or 0) > MAX_DOCUMENT_BYTES:
                raise FetchError(f"{what}: larger than {MAX_DOCUMENT_BYTES} bytes")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise FetchError(f"{what}: larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise FetchError(f"{what}: not JSON") from error


def _describe(error: BaseException) -> str:
    """A short, secret-free account of a failed fetch for `status` and the log."""
    if isinstance(error, FetchError):
        return str(error)
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, aiohttp.ClientConnectionError):
        return f"cannot connect ({type(error).__name__})"
    if isinstance(error, aiohttp.ClientResponseError):
        # Its message quotes the URL asked, which for a proxy's answer (ClientHttpProxyError)
        # is the proxy's, credentials included.
        return f"{type(error).__name__}: HTTP {error.status}"
    return f"{type(error).__name__}: {error}"
