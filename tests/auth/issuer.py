"""A real OIDC issuer on loopback: discovery document, JWKS, and tokens signed by hand.

Tokens are built here with `cryptography` directly (not with the library under test), so the
verifier is checked against an independent encoder, and tokens no library would produce (alg
none, HS256 keyed with a public key) are easy to make.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

AUDIENCE = "https://lockgate.example.com"
JWKS_PATH = "/oauth/discovery/keys"  # where GitLab serves its JWKS


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_bytes(value: int, length: int | None = None) -> bytes:
    return value.to_bytes(length or (value.bit_length() + 7) // 8, "big")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def alg(self) -> Literal["RS256", "ES256"]:
        return "RS256" if isinstance(self.private, rsa.RSAPrivateKey) else "ES256"

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, str]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            numbers = self.private.public_key().public_numbers()
            return {
                "kty": "RSA",
                "kid": self.kid,
                "use": "sig",
                "alg": "RS256",
                "n": b64url(int_bytes(numbers.n)),
                "e": b64url(int_bytes(numbers.e)),
            }
        point = self.private.public_key().public_numbers()
        return {
            "kty": "EC",
            "kid": self.kid,
            "use": "sig",
            "crv": "P-256",
            "x": b64url(int_bytes(point.x, 32)),
            "y": b64url(int_bytes(point.y, 32)),
        }

    def sign(self, signing_input: bytes) -> bytes:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return int_bytes(r, 32) + int_bytes(s, 32)


def new_rsa_key(bits: int = 2048) -> SigningKey:
    return SigningKey(f"rsa-{secrets.token_hex(4)}", rsa.generate_private_key(65537, bits))


def new_ec_key() -> SigningKey:
    return SigningKey(f"ec-{secrets.token_hex(4)}", ec.generate_private_key(ec.SECP256R1()))


def encode(header: object, claims: object, sign: Any) -> str:
    """A compact JWS of any JSON header and claims: `sign(signing_input) -> bytes` (None: an
    empty signature)."""
    signing_input = (
        b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    ).encode()
    signature = sign(signing_input) if sign is not None else b""
    return signing_input.decode() + "." + b64url(signature)


def hs256_with(secret: bytes) -> Any:
    return lambda signing_input: hmac.new(secret, signing_input, hashlib.sha256).digest()


class Issuer:
    """An aiohttp app serving `/.well-known/openid-configuration` and the JWKS, on loopback."""

    def __init__(self) -> None:
        self.rsa = new_rsa_key()
        self.ec = new_ec_key()
        self.published: list[SigningKey] = [self.rsa, self.ec]
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        self.fail_status: int | None = None  # answer every request with this status
        self.delay_s = 0.0  # before answering the JWKS
        self.discovery_issuer: str | None = None  # what discovery claims (default: the truth)
        self.jwks_document: Any = None  # served instead of the real JWKS when set
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> Issuer:
        """Listen on loopback (`port` 0: any free port; else e.g. to come back after `close`)."""
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get(JWKS_PATH, self._jwks)
        # A short shutdown: a deliberately slow answer must not hold up `close`.
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        """Stop listening: the issuer is down (connections are refused)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def rotate(self) -> None:
        """Replace both signing keys by new ones (new kids); the old ones are unpublished."""
        self.rsa, self.ec = new_rsa_key(), new_ec_key()
        self.published = [self.rsa, self.ec]

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Claims as GitLab puts them in a CI job's ID token (strings for ids and booleans)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "namespace_id": "72",
            "namespace_path": "platform",
            "project_id": "1234",
            "project_path": "platform/lockgate",
            "user_id": "17",
            "user_login": "alice",
            "user_email": "alice@example.com",
            "user_access_level": "maintainer",
            "user_identities": [],
            "pipeline_id": "98765",
            "pipeline_source": "push",
            "job_id": "4567890",
            "ref": "main",
            "ref_type": "branch",
            "ref_path": "refs/heads/main",
            "ref_protected": "true",
            "groups_direct": ["platform"],
            "runner_id": 3,
            "runner_environment": "self-hosted",
            "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
            "project_visibility": "private",
            "ci_config_ref_uri": "gitlab.example.com/platform/lockgate//.gitlab-ci.yml@refs/heads/main",
            "ci_config_sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
            "jti": secrets.token_hex(16),
            "iss": self.url,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            "sub": "project_path:platform/lockgate:ref_type:branch:ref:main",
            "aud": AUDIENCE,
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def mint(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        key: SigningKey | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        """A token signed by `key` (default: the current RSA key); header entries set to None
        are left out."""
        key = key or self.rsa
        fields: dict[str, Any] = {"alg": key.alg, "typ": "JWT", "kid": key.kid, **(header or {})}
        fields = {name: value for name, value in fields.items() if value is not None}
        return encode(fields, self.claims() if claims is None else claims, key.sign)

    async def _discovery(self, request: web.Request) -> web.Response:
        self.discovery_fetches += 1
        if self.fail_status is not None:
            return web.Response(status=self.fail_status, text="unavailable")
        return web.json_response(
            {
                "issuer": self.discovery_issuer or self.url,
                "jwks_uri": self.url + JWKS_PATH,
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public", "pairwise"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_status is not None:
            return web.Response(status=self.fail_status, text="unavailable")
        document = self.jwks_document
        if document is None:
            document = {"keys": [key.jwk() for key in self.published]}
        return web.json_response(document)
