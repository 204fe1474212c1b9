"""The issuer's keys: discovery, caching, refetch on unknown kid (rate-limited), failures."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lockgate.auth.oidc import OidcVerifier
from lockgate.auth.oidc.jwk import parse_jwks
from lockgate.config.models import OidcIssuerConfig
from lockgate.errors import Unauthenticated
from tests.auth.conftest import FakeClock, MakeVerifier
from tests.auth.issuer import (
    AUDIENCE,
    JWKS_PATH,
    Issuer,
    SigningKey,
    b64url,
    encode,
    hs256_with,
    int_bytes,
    new_ec_key,
    new_rsa_key,
)
from tests.conftest import free_port

GENERIC_401 = Unauthenticated().message


async def rejected(verifier: OidcVerifier, token: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    assert caught.value.message == GENERIC_401


async def test_known_kid_and_fresh_cache_need_no_fetch(
    issuer: Issuer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    verifier = make_verifier(issuer.url, jwks_cache_s=600)
    for _ in range(50):
        await verifier.verify(issuer.mint(key=issuer.rsa))
        await verifier.verify(issuer.mint(key=issuer.ec))
        clock.advance(10)  # 500 s in all: within the 600 s the keys are cached
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)


async def test_concurrent_first_tokens_share_one_fetch(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    issuer.delay_s = 0.1  # keep the fetch in flight while the others arrive
    verifier = make_verifier(issuer.url)
    tokens = [issuer.mint(key=issuer.rsa if n % 2 else issuer.ec) for n in range(20)]
    identities = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert len(identities) == 20
    assert issuer.jwks_fetches == 1


async def test_cache_expires_after_jwks_cache_s(
    issuer: Issuer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    verifier = make_verifier(issuer.url, jwks_cache_s=300)
    await verifier.verify(issuer.mint())
    clock.advance(299)
    await verifier.verify(issuer.mint())
    assert issuer.jwks_fetches == 1
    clock.advance(2)
    await verifier.verify(issuer.mint())
    assert issuer.jwks_fetches == 2


async def test_rotated_keys_are_fetched_on_unknown_kid(
    issuer: Issuer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    verifier = make_verifier(issuer.url, jwks_cache_s=3600)
    old_rsa = issuer.rsa
    await verifier.verify(issuer.mint())
    clock.advance(11)  # past the refetch interval since the first fetch
    issuer.rotate()
    identity = await verifier.verify(issuer.mint(key=issuer.rsa))
    assert identity.subject
    await verifier.verify(issuer.mint(key=issuer.ec))
    assert issuer.jwks_fetches == 2
    # The old key was unpublished: its tokens no longer verify.
    await rejected(verifier, issuer.mint(key=old_rsa))
    assert verifier.status()[0]["keys"] == 2


async def test_unknown_kid_refetch_is_rate_limited(
    issuer: Issuer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    verifier = make_verifier(issuer.url)  # the default interval: 10 s
    await verifier.verify(issuer.mint())
    assert issuer.jwks_fetches == 1
    stranger = new_rsa_key()
    forged = [issuer.mint(key=stranger, header={"kid": f"made-up-{n}"}) for n in range(25)]
    # Within 10 s of the last fetch no made-up kid reaches the issuer...
    for token in forged:
        await rejected(verifier, token)
    await asyncio.gather(*(rejected(verifier, token) for token in forged))
    assert issuer.jwks_fetches == 1
    # ...a rotation within that window is not seen yet...
    clock.advance(5)
    issuer.rotate()
    await rejected(verifier, issuer.mint())
    assert issuer.jwks_fetches == 1
    # ...after it, one unknown kid causes one fetch (and the rotation is picked up).
    clock.advance(5)
    await rejected(verifier, forged[0])
    assert issuer.jwks_fetches == 2
    await verifier.verify(issuer.mint())
    for token in forged:
        await rejected(verifier, token)
    assert issuer.jwks_fetches == 2
    clock.advance(10)
    await rejected(verifier, forged[1])
    assert issuer.jwks_fetches == 3


async def test_issuer_down_gives_401_and_status(
    make_verifier: MakeVerifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    issuer = Issuer()  # never started: nothing listens on its port
    issuer.url = f"http://127.0.0.1:{free_port()}"
    verifier = make_verifier(issuer.url)
    # On the module's own logger: the gateway's logging setup stops `lockgate` propagating.
    logger = logging.getLogger("lockgate.auth.oidc.jwks")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger=logger.name):
            await rejected(verifier, issuer.mint())
    finally:
        logger.removeHandler(caplog.handler)
    [status] = verifier.status()
    assert status["issuer"] == issuer.url
    assert status["keys"] == 0
    assert status["last_success"] is None
    assert status["jwks_uri"] is None
    assert isinstance(status["last_error"], str)
    assert "cannot connect" in status["last_error"]
    assert any(issuer.url in record.getMessage() for record in caplog.records)
    # While it stays down, tokens keep getting the same 401 without a connection attempt each.
    for _ in range(5):
        await rejected(verifier, issuer.mint())


async def test_issuer_that_comes_back_is_used_again(
    make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    port = free_port()
    issuer = Issuer()
    issuer.url = f"http://127.0.0.1:{port}"
    verifier = make_verifier(issuer.url)
    await rejected(verifier, issuer.mint())
    assert verifier.status()[0]["last_error"]
    await issuer.start(port)  # the same URL, the same keys
    try:
        await rejected(verifier, issuer.mint())  # too soon after the failure: not asked yet
        assert issuer.jwks_fetches == 0
        clock.advance(10)
        await verifier.verify(issuer.mint())
        [status] = verifier.status()
        assert status["last_error"] is None
        assert status["keys"] == 2
        assert status["jwks_uri"] == issuer.url + JWKS_PATH
    finally:
        await issuer.close()


async def test_issuer_error_status_gives_401(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    issuer.fail_status = 503
    verifier = make_verifier(issuer.url)
    await rejected(verifier, issuer.mint())
    assert verifier.status()[0]["last_error"] == "discovery document: HTTP 503"


async def test_known_keys_survive_an_issuer_outage(
    issuer: Issuer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    verifier = make_verifier(issuer.url, jwks_cache_s=60)
    await verifier.verify(issuer.mint())
    before = verifier.status()[0]["last_success"]
    assert isinstance(before, str)
    assert datetime.fromisoformat(before) <= datetime.now(UTC)
    await issuer.close()
    clock.advance(120)  # the cache is stale and the issuer is gone
    await verifier.verify(issuer.mint())
    [status] = verifier.status()
    assert status["keys"] == 2
    assert status["last_success"] == before
    assert "cannot connect" in str(status["last_error"])
    # An unknown kid is still refused.
    await rejected(verifier, issuer.mint(key=new_ec_key()))


async def test_slow_issuer_times_out(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    issuer.delay_s = 2.0
    verifier = make_verifier(issuer.url, fetch_timeout_s=0.2)
    started = asyncio.get_running_loop().time()
    await rejected(verifier, issuer.mint())
    assert asyncio.get_running_loop().time() - started < 1.5
    assert verifier.status()[0]["last_error"] == "timed out"


async def test_discovery_must_name_the_configured_issuer(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    issuer.discovery_issuer = "https://attacker.example.com"
    verifier = make_verifier(issuer.url)
    await rejected(verifier, issuer.mint())
    assert issuer.jwks_fetches == 0
    assert verifier.status()[0]["last_error"] == "the discovery document names another issuer"


async def test_discovery_issuer_trailing_slash_is_ignored(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    issuer.discovery_issuer = issuer.url + "/"
    verifier = make_verifier(issuer.url)
    await verifier.verify(issuer.mint())


@pytest.mark.parametrize(
    "document",
    [
        {"keys": "nope"},
        ["keys"],
        {"nokeys": []},
    ],
)
async def test_malformed_jwks_gives_401(
    issuer: Issuer, make_verifier: MakeVerifier, document: object
) -> None:
    issuer.jwks_document = document
    verifier = make_verifier(issuer.url)
    await rejected(verifier, issuer.mint())
    assert "JWKS" in str(verifier.status()[0]["last_error"])


async def test_unusable_keys_in_the_jwks_are_ignored(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    weak = new_rsa_key(1024)
    encryption = new_rsa_key()
    hs_secret = b"0123456789abcdef0123456789abcdef"
    mislabelled = new_ec_key()
    published: list[SigningKey] = [issuer.rsa, issuer.ec]
    issuer.jwks_document = {
        "keys": [
            *(key.jwk() for key in published),
            weak.jwk(),
            {**encryption.jwk(), "use": "enc"},
            {"kty": "oct", "kid": "hmac", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"},
            {**mislabelled.jwk(), "alg": "ES384"},
            {**new_ec_key().jwk(), "x": "AAAA"},  # not a point on the curve
            {"kty": "RSA", "kid": "broken", "n": 5, "e": "AQAB"},
            {
                "kty": "OKP",
                "kid": "ed",
                "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            },
            "not a key",
        ]
    }
    verifier = make_verifier(issuer.url)
    await verifier.verify(issuer.mint(key=issuer.rsa))
    await verifier.verify(issuer.mint(key=issuer.ec))
    assert verifier.status()[0]["keys"] == 2
    await rejected(verifier, issuer.mint(key=weak))
    await rejected(verifier, issuer.mint(key=encryption))
    await rejected(verifier, issuer.mint(key=mislabelled))
    hs = encode({"alg": "HS256", "kid": "hmac"}, issuer.claims(), hs256_with(hs_secret))
    await rejected(verifier, hs)


async def test_jwks_with_private_members_yields_public_keys_only(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    """An issuer that leaks private members must not make the gateway hold a private key."""
    assert isinstance(issuer.rsa.private, rsa.RSAPrivateKey)
    numbers = issuer.rsa.private.private_numbers()
    assert isinstance(issuer.ec.private, ec.EllipticCurvePrivateKey)
    leaked = {
        "keys": [
            {
                **issuer.rsa.jwk(),
                "d": b64url(int_bytes(numbers.d)),
                "p": b64url(int_bytes(numbers.p)),
            },
            {
                **issuer.ec.jwk(),
                "d": b64url(int_bytes(issuer.ec.private.private_numbers().private_value, 32)),
            },
        ]
    }
    parsed = parse_jwks(leaked)
    assert sorted(alg for _, alg in parsed) == ["ES256", "RS256"]
    for key in parsed.values():
        assert isinstance(key.key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    issuer.jwks_document = leaked
    verifier = make_verifier(issuer.url)
    await verifier.verify(issuer.mint(key=issuer.rsa))
    await verifier.verify(issuer.mint(key=issuer.ec))
    assert verifier.status()[0]["keys"] == 2


async def test_start_does_not_fail_when_an_issuer_is_down(
    issuer: Issuer, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    configs = [
        OidcIssuerConfig(issuer=down, audience=AUDIENCE),
        OidcIssuerConfig(issuer=issuer.url, audience=AUDIENCE),
    ]
    verifier = OidcVerifier(configs, http, clock=clock)
    try:
        await verifier.start()  # returns at once; fetching happens in the background
        for _ in range(200):
            if all(s["last_success"] or s["last_error"] for s in verifier.status()):
                break
            await asyncio.sleep(0.01)
        up, gone = sorted(verifier.status(), key=lambda s: s["issuer"] != issuer.url)
        assert (up["keys"], up["last_error"]) == (2, None)
        assert gone["keys"] == 0
        assert "cannot connect" in str(gone["last_error"])
        # The prefetched keys serve the first token without another fetch.
        await verifier.verify(issuer.mint())
        assert issuer.jwks_fetches == 1
    finally:
        await verifier.close()


async def test_close_cancels_a_fetch_in_flight(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    issuer.delay_s = 5.0
    verifier = make_verifier(issuer.url)
    await verifier.start()
    await asyncio.sleep(0.05)
    started = asyncio.get_running_loop().time()
    await verifier.close()
    assert asyncio.get_running_loop().time() - started < 1.0


async def test_two_entries_for_one_issuer_share_keys(
    issuer: Issuer, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    configs = [
        OidcIssuerConfig(
            issuer=issuer.url, audience=AUDIENCE, team="releases", require={"ref": "release/*"}
        ),
        OidcIssuerConfig(issuer=issuer.url, audience=AUDIENCE, team="everyone"),
        OidcIssuerConfig(
            issuer=issuer.url + "/", audience="https://other.example.com", team="other"
        ),
    ]
    verifier = OidcVerifier(configs, http, clock=clock)
    try:
        release = await verifier.verify(issuer.mint(issuer.claims(ref="release/1.2")))
        main = await verifier.verify(issuer.mint(issuer.claims(ref="main")))
        other = await verifier.verify(issuer.mint(issuer.claims(aud="https://other.example.com")))
        assert (release.team, main.team, other.team) == ("releases", "everyone", "other")
        assert issuer.jwks_fetches == 1
        assert len(verifier.status()) == 1
    finally:
        await verifier.close()
