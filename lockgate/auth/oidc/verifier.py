"""Verify a JWT against the configured OIDC issuers and turn it into an identity.

Order of checks, cheapest first: size and shape, algorithm (RS256 or ES256 only, chosen by us:
the key's type must match it), issuer (one configured, trailing slash aside), audience, the key
(by `kid`, from the issuer's cached JWKS), then signature and times (`exp` required; `nbf`, `iat`
with the issuer's leeway). Every failure so far is the same 401 with the same message, so an
attacker learns nothing from it. Only then the issuer's `require` rules and team claim: a valid
token that fails them is a 403 naming the claim.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import aiohttp
import jwt

from lockgate.auth.oidc.claims import ClaimRule, check_rules, compile_rules, team_of
from lockgate.auth.oidc.jwk import Algorithm
from lockgate.auth.oidc.jwks import IssuerKeys
from lockgate.auth.oidc.token import looks_like_jwt, read_unverified
from lockgate.config.models import OidcIssuerConfig
from lockgate.errors import PermissionDenied, Unauthenticated
from lockgate.transport.proxies import Proxies

__all__ = ["OidcIdentity", "OidcVerifier"]

DEFAULT_MIN_REFETCH_S = 10.0
DEFAULT_FETCH_TIMEOUT_S = 5.0
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
_ALGORITHMS: Mapping[str, Algorithm] = {"RS256": "RS256", "ES256": "ES256"}


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    """A caller proven by a token: which issuer vouched, for whom, and in which team."""

    issuer: OidcIssuerConfig
    subject: str
    team: str | None
    claims: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Trust:
    """One configured issuer entry, with what is derived from it once."""

    config: OidcIssuerConfig
    keys: IssuerKeys
    rules: tuple[ClaimRule, ...]
    audiences: frozenset[str]
    issuer_names: tuple[str, str]


class OidcVerifier:
    """Verifies tokens of the configured issuers; the caller owns `session`.

    Several entries may name the same issuer (e.g. with different audiences or `require` rules):
    they share one key cache, and the first entry whose audience and rules the token satisfies
    applies.
    """

    def __init__(
        self,
        issuers: Sequence[OidcIssuerConfig],
        session: aiohttp.ClientSession,
        *,
        min_refetch_s: float = DEFAULT_MIN_REFETCH_S,
        fetch_timeout_s: float = DEFAULT_FETCH_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        proxies: Proxies | None = None,
    ) -> None:
        self._caches: dict[str, IssuerKeys] = {}
        self._trusts: dict[str, list[_Trust]] = {}
        for config in issuers:
            name = config.issuer.rstrip("/")
            keys = self._caches.get(name)
            if keys is None:
                keys = self._caches[name] = IssuerKeys(
                    name,
                    session,
                    cache_s=config.jwks_cache_s,
                    min_refetch_s=min_refetch_s,
                    timeout_s=fetch_timeout_s,
                    clock=clock,
                    proxies=proxies,
                )
            audience = config.audience
            self._trusts.setdefault(name, []).append(
                _Trust(
                    config=config,
                    keys=keys,
                    rules=compile_rules(config.require),
                    audiences=frozenset([audience] if isinstance(audience, str) else audience),
                    issuer_names=(name, name + "/"),
                )
            )

    async def start(self) -> None:
        """Begin fetching every issuer's keys in the background; an issuer that is down is
        logged and retried when a token needs it, and never delays or fails startup."""
        for keys in self._caches.values():
            keys.prefetch()

    async def close(self) -> None:
        for keys in self._caches.values():
            await keys.close()

    def status(self) -> list[dict[str, object]]:
        """Per issuer: `issuer`, `jwks_uri`, `keys` (cached), `last_success`, `last_error`."""
        return [keys.status() for keys in self._caches.values()]

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        """Whether `token` has a JWT's shape (tells tokens from API keys; verifies nothing)."""
        return looks_like_jwt(token)

    async def verify(self, token: str) -> OidcIdentity:
        """The identity a token proves. Raises Unauthenticated (401) for any token that is not
        valid, PermissionDenied (403) for a valid one that fails its issuer's rules."""
        unverified = read_unverified(token)
        if unverified is None:
            raise Unauthenticated()
        alg = unverified.header.get("alg")
        algorithm = _ALGORITHMS.get(alg) if isinstance(alg, str) else None
        kid = unverified.header.get("kid")
        iss = unverified.claims.get("iss")
        if algorithm is None or not isinstance(kid, str) or not isinstance(iss, str):
            raise Unauthenticated()
        trusts = [
            trust
            for trust in self._trusts.get(iss.rstrip("/"), ())
            if trust.audiences.intersection(_audiences(unverified.claims.get("aud")))
        ]
        if not trusts:
            raise Unauthenticated()
        key = await trusts[0].keys.get(kid, algorithm)
        if key is None:
            raise Unauthenticated()
        first_denial: PermissionDenied | None = None
        for trust in trusts:
            claims = _decode(token, key.key, algorithm, trust)
            try:
                check_rules(trust.rules, claims)
                team = team_of(trust.config.team_claim, trust.config.team, claims)
            except PermissionDenied as error:
                first_denial = first_denial or error
                continue
            return OidcIdentity(
                issuer=trust.config,
                subject=claims["sub"],
                team=team,
                claims=MappingProxyType(claims),
            )
        raise first_denial or Unauthenticated()


def _audiences(aud: object) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [item for item in aud if isinstance(item, str)]
    return []


def _decode(token: str, key: Any, algorithm: Algorithm, trust: _Trust) -> dict[str, Any]:
    """Signature, issuer, audience and times, checked by PyJWT; any failure is the one 401."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=trust.audiences,
            issuer=trust.issuer_names,
            leeway=trust.config.leeway_s,
            options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise Unauthenticated() from error
