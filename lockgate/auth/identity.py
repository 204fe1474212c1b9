"""The identify stage: a request's credential -> a `Principal` (DESIGN §2, step 1).

Credentials come in `Authorization: Bearer` or `x-api-key`. A JWT from a configured issuer is
verified as OIDC; anything else is hashed and looked up. Every failure answers the same 401, so
a caller learns nothing about which check failed.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lockgate.api.http import Request
from lockgate.auth.directory import Directory
from lockgate.auth.keys import hash_key, hashes_match
from lockgate.auth.policy import Policy, Principal, Scope
from lockgate.config.models import GatewayConfig
from lockgate.errors import Unauthenticated

if TYPE_CHECKING:  # JWT and crypto libraries load only when OIDC issuers are configured
    from lockgate.auth.oidc import OidcIdentity, OidcVerifier

__all__ = ["MAX_CREDENTIAL_BYTES", "Identifier", "credential"]

log = logging.getLogger("lockgate.auth")

MAX_CREDENTIAL_BYTES = 16 * 1024
MAX_OIDC_POLICIES = 4096


def credential(request: Request) -> str | None:
    """The caller's key or token, from `Authorization: Bearer …` or `x-api-key`."""
    header = request.header(b"authorization")
    if header is not None:
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        raw = value.strip()
    else:
        raw = (request.header(b"x-api-key") or b"").strip()
    if not raw or len(raw) > MAX_CREDENTIAL_BYTES:
        return None
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return None


class Identifier:
    """Resolves credentials against the current `Directory`, the admin key and OIDC issuers."""

    def __init__(
        self,
        config: GatewayConfig,
        oidc: OidcVerifier | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        admin_key = config.server.admin_key
        self._admin_hash = hash_key(admin_key.get_secret_value()) if admin_key else None
        self._declared_closed = config.closed
        self._oidc = oidc
        self._clock = clock
        self._config = config
        self.directory = Directory(config.keys, config.teams)
        self._oidc_policies: dict[tuple[str, str | None], Policy] = {}

    def replace(self, directory: Directory) -> None:
        """Swap in a new snapshot of keys and teams (after a database change)."""
        self.directory = directory
        self._oidc_policies = {}

    @property
    def open(self) -> bool:
        """No credential of any kind exists: every caller is let in (local use)."""
        return not self._declared_closed and self.directory.stored_keys == 0

    def is_admin(self, request: Request) -> bool:
        presented = credential(request)
        return (
            presented is not None
            and self._admin_hash is not None
            and hashes_match(hash_key(presented), self._admin_hash)
        )

    async def identify(self, request: Request) -> Principal:
        presented = credential(request)
        if self.open and (presented is None or self._admin_hash is None):
            # No key, team, issuer or admin key exists: there is nobody to tell apart, so the
            # credential a SDK sends anyway is not even hashed.
            return Principal.open_access()
        if presented is None:
            raise Unauthenticated()
        hashed = hash_key(presented)
        if self._admin_hash is not None and hashes_match(hashed, self._admin_hash):
            return Principal.admin()
        entry = self.directory.by_hash.get(hashed)
        if entry is not None and hmac.compare_digest(entry.record.hash, hashed):
            expires_at = entry.record.expires_at
            if expires_at is not None and expires_at <= self._clock():
                raise Unauthenticated()
            return entry.principal
        if self._oidc is not None and self._oidc.looks_like_jwt(presented):
            return self._oidc_principal(await self._oidc.verify(presented))
        if self.open:
            return Principal.open_access()  # an open gateway ignores whatever key a SDK sends
        raise Unauthenticated()

    def _oidc_principal(self, identity: OidcIdentity) -> Principal:
        issuer = identity.issuer
        memo_key = (issuer.issuer, identity.team)
        policy = self._oidc_policies.get(memo_key)
        if policy is None:
            team_policy = self.directory.team_policies.get(identity.team or "")
            if team_policy is not None:
                policy = Policy((*team_policy.allowlists, tuple(issuer.models)), team_policy.scopes)
            else:
                key = f"team:{identity.team}" if identity.team else f"oidc:{issuer.issuer}"
                label = f"team '{identity.team}'" if identity.team else f"issuer {issuer.issuer}"
                policy = Policy(
                    (tuple(issuer.models),), (Scope(key, label, issuer.limits, issuer.budget),)
                )
            if len(self._oidc_policies) >= MAX_OIDC_POLICIES:
                self._oidc_policies.clear()
            self._oidc_policies[memo_key] = policy
        return Principal("oidc", identity.subject, identity.team, policy, identity.claims)
