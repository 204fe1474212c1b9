"""Public keys from a JWKS document, kept only if they can verify RS256 or ES256.

Keys are built here from their public members alone, so a JWKS that (wrongly) publishes private
members never yields a private key, and an HMAC (`oct`) key can never enter the cache.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["ALGORITHMS", "Algorithm", "VerificationKey", "parse_jwks"]

Algorithm = Literal["RS256", "ES256"]
ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256"})
"""The only signature algorithms accepted: what GitLab (RS256) and most other OIDC issuers use."""

MIN_RSA_BITS = 2048
EC_P256_COORDINATE_BYTES = 32


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str
    algorithm: Algorithm
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def parse_jwks(document: object) -> dict[tuple[str, Algorithm], VerificationKey]:
    """Usable keys by (kid, algorithm); keys of other types, uses or sizes are left out.

    Raises ValueError when the document is not a JWKS at all.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no `keys` list)")
    keys: dict[tuple[str, Algorithm], VerificationKey] = {}
    for entry in document["keys"]:
        if isinstance(entry, dict):
            key = _parse_jwk(entry)
            if key is not None:
                keys.setdefault((key.kid, key.algorithm), key)
    return keys


def _parse_jwk(jwk: Mapping[str, Any]) -> VerificationKey | None:
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid or jwk.get("use", "sig") != "sig":
        return None
    try:
        if jwk.get("kty") == "RSA" and jwk.get("alg", "RS256") == "RS256":
            public = rsa.RSAPublicNumbers(_uint(jwk["e"]), _uint(jwk["n"])).public_key()
            if public.key_size < MIN_RSA_BITS:
                return None
            return VerificationKey(kid, "RS256", public)
        if (
            jwk.get("kty") == "EC"
            and jwk.get("crv") == "P-256"
            and jwk.get("alg", "ES256") == "ES256"
        ):
            x, y = _coordinate(jwk["x"]), _coordinate(jwk["y"])
            point = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1())
            return VerificationKey(
                kid, "ES256", point.public_key()
            )  # checks the point is on the curve
    except (KeyError, TypeError, ValueError):  # binascii.Error is a ValueError
        return None
    return None


def _bytes(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a base64url string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error as error:
        raise ValueError("bad base64url") from error


def _uint(value: object) -> int:
    return int.from_bytes(_bytes(value), "big")


def _coordinate(value: object) -> int:
    raw = _bytes(value)
    if len(raw) != EC_P256_COORDINATE_BYTES:
        raise ValueError("a P-256 coordinate is 32 bytes")
    return _uint(value)
