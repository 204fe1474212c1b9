"""Token checks: signature, algorithm, issuer, audience, times, shape. Every failure is one 401."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from lockgate.auth.oidc import MAX_TOKEN_CHARS, OidcIdentity, OidcVerifier, looks_like_jwt
from lockgate.errors import Unauthenticated
from tests.auth.conftest import MakeVerifier
from tests.auth.issuer import AUDIENCE, Issuer, b64url, encode, hs256_with, new_rsa_key

GENERIC_401 = Unauthenticated().message


async def rejected(verifier: OidcVerifier, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    assert caught.value.message == GENERIC_401
    assert caught.value.status == 401
    return caught.value


async def test_valid_rs256_token(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    identity = await verifier.verify(issuer.mint(key=issuer.rsa))
    assert isinstance(identity, OidcIdentity)
    assert identity.issuer.issuer == issuer.url
    assert identity.subject == "project_path:platform/lockgate:ref_type:branch:ref:main"
    assert identity.team is None
    assert identity.claims["project_path"] == "platform/lockgate"
    with pytest.raises(TypeError):
        identity.claims["project_path"] = "other/project"  # type: ignore[index]


async def test_valid_es256_token(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url, team="ci")
    identity = await verifier.verify(issuer.mint(key=issuer.ec))
    assert identity.subject.startswith("project_path:platform/lockgate")
    assert identity.team == "ci"


async def test_audience_as_list_on_either_side(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url, audience=["https://other.example.com", AUDIENCE])
    await verifier.verify(issuer.mint(issuer.claims(aud=[AUDIENCE, "https://vault.example.com"])))
    await verifier.verify(issuer.mint(issuer.claims(aud="https://other.example.com")))


async def test_wrong_or_missing_audience(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    await rejected(verifier, issuer.mint(issuer.claims(aud="https://vault.example.com")))
    await rejected(verifier, issuer.mint(issuer.claims(aud=["https://vault.example.com"])))
    await rejected(verifier, issuer.mint(issuer.claims(aud=None)))
    await rejected(verifier, issuer.mint(issuer.claims(aud=[])))
    # A case variant or a prefix is another audience.
    await rejected(verifier, issuer.mint(issuer.claims(aud=AUDIENCE.upper())))
    await rejected(verifier, issuer.mint(issuer.claims(aud=AUDIENCE + "/extra")))


async def test_issuer_must_be_configured(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    await rejected(verifier, issuer.mint(issuer.claims(iss="https://gitlab.example.com")))
    await rejected(verifier, issuer.mint(issuer.claims(iss=issuer.url + "/evil")))
    await rejected(verifier, issuer.mint(issuer.claims(iss=issuer.url.upper())))
    await rejected(verifier, issuer.mint(issuer.claims(iss=None)))
    await rejected(verifier, issuer.mint(issuer.claims(iss=["x"])))
    # A token of another issuer, signed by its own published keys, is not trusted either.
    other = await Issuer().start()
    try:
        await rejected(verifier, other.mint())
        assert other.jwks_fetches == 0
    finally:
        await other.close()


async def test_issuer_trailing_slash_is_ignored(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.url + "/")
    await verifier.verify(issuer.mint(issuer.claims(iss=issuer.url + "/")))
    await verifier.verify(issuer.mint(issuer.claims(iss=issuer.url)))


async def test_expired_token(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url, leeway_s=30)
    now = int(time.time())
    await rejected(verifier, issuer.mint(issuer.claims(iat=now - 600, nbf=now - 600, exp=now - 60)))


async def test_exp_is_required_and_numeric(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    await rejected(verifier, issuer.mint(issuer.claims(exp=None)))
    await rejected(verifier, issuer.mint(issuer.claims(exp="tomorrow")))


async def test_subject_is_required(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    await rejected(verifier, issuer.mint(issuer.claims(sub=None)))
    await rejected(verifier, issuer.mint(issuer.claims(sub=42)))


async def test_not_yet_valid(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url, leeway_s=30)
    now = int(time.time())
    await rejected(verifier, issuer.mint(issuer.claims(nbf=now + 120, exp=now + 600)))
    await rejected(verifier, issuer.mint(issuer.claims(iat=now + 120, nbf=None, exp=now + 600)))


async def test_clock_skew_within_leeway_is_accepted(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.url, leeway_s=60)
    now = int(time.time())
    # The issuer's clock runs 40 s ahead: iat and nbf are in our future.
    await verifier.verify(issuer.mint(issuer.claims(iat=now + 40, nbf=now + 40, exp=now + 340)))
    # Expired 40 s ago by our clock: still within the leeway.
    await verifier.verify(issuer.mint(issuer.claims(iat=now - 340, nbf=now - 340, exp=now - 40)))
    # The same skew with no leeway is refused.
    strict = make_verifier(issuer.url, leeway_s=0)
    await rejected(strict, issuer.mint(issuer.claims(nbf=now + 40, exp=now + 340)))
    await rejected(strict, issuer.mint(issuer.claims(exp=now - 40)))


async def test_alg_none_is_refused(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    await verifier.verify(issuer.mint())  # the keys are cached: only the algorithm is at fault
    for alg in ("none", "None", "NONE", ""):
        header = {"alg": alg, "typ": "JWT", "kid": issuer.rsa.kid}
        await rejected(verifier, encode(header, issuer.claims(), None))
    # ...also with a (meaningless) signature attached.
    header = {"alg": "none", "kid": issuer.rsa.kid}
    await rejected(verifier, encode(header, issuer.claims(), issuer.rsa.sign))
    header = {"kid": issuer.rsa.kid}  # no alg at all
    await rejected(verifier, encode(header, issuer.claims(), issuer.rsa.sign))


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hmac_keyed_with_the_public_key_is_refused(
    issuer: Issuer, make_verifier: MakeVerifier, alg: str
) -> None:
    """The classic algorithm confusion: an HMAC "signature" whose secret is the public key."""
    verifier = make_verifier(issuer.url)
    await verifier.verify(issuer.mint())
    pem = issuer.rsa.public_pem()
    jwk_json = b'{"e":"' + issuer.rsa.jwk()["e"].encode() + b'"}'
    for secret in (pem, pem.strip(), jwk_json):
        header = {"alg": alg, "typ": "JWT", "kid": issuer.rsa.kid}
        await rejected(verifier, encode(header, issuer.claims(), hs256_with(secret)))


async def test_other_algorithms_are_refused(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    await verifier.verify(issuer.mint())
    for alg in ("RS384", "RS512", "PS256", "ES384", "ES512", "EdDSA", "rs256", "RSA-OAEP"):
        await rejected(verifier, issuer.mint(header={"alg": alg}))


async def test_key_type_must_match_the_algorithm(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.url)
    await verifier.verify(issuer.mint())
    # RS256 named in the header, but the kid is the EC key's (and vice versa).
    await rejected(verifier, issuer.mint(key=issuer.rsa, header={"kid": issuer.ec.kid}))
    await rejected(verifier, issuer.mint(key=issuer.ec, header={"kid": issuer.rsa.kid}))
    await rejected(verifier, issuer.mint(key=issuer.ec, header={"alg": "RS256"}))


async def test_kid_is_required(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    await rejected(verifier, issuer.mint(header={"kid": None}))
    await rejected(verifier, issuer.mint(header={"kid": 7}))


async def test_signature_of_an_unpublished_key_is_refused(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.url)
    impostor = new_rsa_key()
    # Signed by another key but claiming the issuer's kid.
    await rejected(verifier, issuer.mint(key=impostor, header={"kid": issuer.rsa.kid}))


async def test_tampered_tokens_are_refused(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    for key in (issuer.rsa, issuer.ec):
        token = issuer.mint(key=key)
        await verifier.verify(token)
        header, payload, signature = token.split(".")
        # A flipped signature byte.
        raw = bytearray(_b64decode(signature))
        raw[len(raw) // 2] ^= 0x01
        await rejected(verifier, f"{header}.{payload}.{b64url(bytes(raw))}")
        # A changed claim under the original signature.
        claims = issuer.claims(project_path="platform/other")
        forged = encode({"alg": key.alg, "typ": "JWT", "kid": key.kid}, claims, None)
        await rejected(verifier, forged.rsplit(".", 1)[0] + "." + signature)
        # No signature, or a truncated one.
        await rejected(verifier, f"{header}.{payload}.")
        await rejected(verifier, f"{header}.{payload}.{signature[:-8]}")


async def test_oversize_token_is_refused(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    padding_claim = "x" * MAX_TOKEN_CHARS
    token = issuer.mint(issuer.claims(padding=padding_claim))
    assert len(token) > MAX_TOKEN_CHARS
    await rejected(verifier, token)
    # Just under the bound is fine.
    small = issuer.mint(issuer.claims(padding=""))
    room = MAX_TOKEN_CHARS - len(small)
    fits = issuer.mint(issuer.claims(padding="x" * (room * 3 // 4 - 4)))
    assert len(fits) <= MAX_TOKEN_CHARS
    await verifier.verify(fits)


GARBAGE = [
    "",
    ".",
    "..",
    "...",
    "a.b",
    "a.b.c",
    "a.b.c.d",
    "lg-" + "A" * 43,
    "Bearer x.y.z",
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0",
    "eyJhbGciOiJSUzI1NiJ9..sig",
    "e30.e30.e30",  # {} . {} . {}
    "W10.W10.",  # [] . []
    "bnVsbA.bnVsbA.",  # null . null
    "eyJhbGci.eyJpc3Mi.abc",  # truncated JSON
    "!!!.???.***",
    "é.é.é",
    "\x00.\x00.\x00",
    "a" * (MAX_TOKEN_CHARS + 1),
]


async def test_garbage_is_refused(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    for token in GARBAGE:
        await rejected(verifier, token)
    # A header that is JSON but of the wrong shape, with a real signature of the issuer.
    headers: list[object] = [[], "RS256", {"alg": ["RS256"], "kid": issuer.rsa.kid}]
    for header in headers:
        forged = encode(header, issuer.claims(), issuer.rsa.sign)
        await rejected(verifier, forged)
    assert issuer.jwks_fetches == 0  # none of this reached the issuer


async def test_every_401_reads_the_same(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url)
    now = int(time.time())
    bad: list[str] = [
        issuer.mint(issuer.claims(aud="nope")),
        issuer.mint(issuer.claims(iss="https://elsewhere.example.com")),
        issuer.mint(issuer.claims(exp=now - 3600)),
        issuer.mint(issuer.claims(nbf=now + 3600)),
        issuer.mint(header={"kid": "unknown"}),
        issuer.mint(header={"alg": "HS256"}),
        issuer.mint(key=new_rsa_key(), header={"kid": issuer.rsa.kid}),
        *GARBAGE,
    ]
    errors: list[Any] = []
    for token in bad:
        with pytest.raises(Unauthenticated) as caught:
            await verifier.verify(token)
        errors.append(caught.value)
    assert {(e.message, e.status, e.code, e.param, tuple(e.headers.items())) for e in errors} == {
        (GENERIC_401, 401, "invalid_api_key", None, (("www-authenticate", "Bearer"),))
    }
    # The exception's text is the same message too (nothing extra reaches a log line).
    assert {str(e) for e in errors} == {GENERIC_401}


def test_looks_like_jwt(issuer: Issuer) -> None:
    assert looks_like_jwt(issuer.mint())
    assert looks_like_jwt(issuer.mint(key=issuer.ec))
    assert looks_like_jwt("eyJhbGciOiJub25lIn0.e30.")  # alg none: still a JWT (and refused)
    assert OidcVerifier.looks_like_jwt(issuer.mint())
    for text in (
        "lg-" + "A" * 43,
        "sk-proj-abc",
        "",
        "a.b",
        "a.b.c.d",
        "a b.c.d",
        "a.b+.c",
        "a.b=.c",
    ):
        assert not looks_like_jwt(text), text


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
