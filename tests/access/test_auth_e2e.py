"""Who may call, end to end: API keys (declared and stored), the admin key, model allowlists,
the open gateway, and OIDC tokens from a real issuer on loopback, through the official SDKs."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anthropic
import openai
import orjson
import pytest

from lockgate.auth.keys import display_prefix, hash_key, new_key
from lockgate.storage import Database
from tests.access.admin_helpers import (
    ADMIN_KEY,
    GENERIC_401,
    USER,
    Admin,
    anthropic_client,
    base_yaml,
    chat,
    declared_key_yaml,
    openai_client,
    raw_request,
    secret,
    wait_for,
)
from tests.auth.issuer import AUDIENCE, Issuer, b64url, encode, hs256_with, new_rsa_key
from tests.conftest import config_from_yaml, running_gateway

CHAT_BODY = orjson.dumps({"model": "m-small", "messages": USER})
MESSAGES_BODY = orjson.dumps({"model": "m-small", "max_tokens": 32, "messages": USER})

GATEWAY_YAML = (
    base_yaml()
    + """teams:
  - {name: limited, limits: {rpm: 2}}
  - {name: narrow, models: [m-small]}
keys:
"""
    + declared_key_yaml("basic")
    + declared_key_yaml("globbed", models='["m-*"]')
    + declared_key_yaml("in-narrow", team="narrow")
    + declared_key_yaml("narrow-globbed", team="narrow", models='["m-*", other]')
    + declared_key_yaml("in-limited", team="limited")
    + declared_key_yaml("expired", expires_at='"2020-01-01T00:00:00Z"')
)


@pytest.fixture(scope="module")
async def gateway() -> AsyncIterator[str]:
    async with running_gateway(config_from_yaml(GATEWAY_YAML)) as url:
        yield url


def assert_generic_401(status: int, body: bytes, *, anthropic_shape: bool = False) -> None:
    assert status == 401, body
    error = orjson.loads(body)["error"]
    assert error["message"] == GENERIC_401
    if anthropic_shape:
        assert error["type"] == "authentication_error"
    else:
        assert error["code"] == "invalid_api_key"
        assert error["type"] == "invalid_request_error"
        assert error["param"] is None


# -- API keys ------------------------------------------------------------------------------


async def test_declared_key_works_through_the_openai_sdk(gateway: str) -> None:
    async with openai_client(gateway, secret("basic")) as client:
        raw = await client.chat.completions.with_raw_response.create(model="m-small", messages=USER)
        reply = raw.parse()
    assert raw.status_code == 200
    assert raw.headers["x-lockgate-model"] == "sim/sim-small"
    assert reply.choices[0].message.content
    assert reply.usage is not None
    assert reply.usage.total_tokens > 0


async def test_declared_key_works_through_the_anthropic_sdk(gateway: str) -> None:
    async with anthropic_client(gateway, secret("basic")) as client:
        message = await client.messages.create(model="m-small", max_tokens=32, messages=USER)
    assert message.type == "message"
    assert message.content[0].type == "text"
    # The Anthropic SDK's header on its own (no Authorization) is what authenticates.
    answer = await raw_request(
        gateway,
        "POST",
        "/v1/messages",
        [(b"x-api-key", secret("basic").encode()), (b"anthropic-version", b"2023-06-01")],
        MESSAGES_BODY,
    )
    assert answer.status == 200, answer.body
    assert answer.json()["type"] == "message"


async def test_the_anthropic_sdk_gets_its_authentication_error(gateway: str) -> None:
    async with anthropic_client(gateway, "lg-not-a-key-of-this-gateway") as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(model="m-small", max_tokens=32, messages=USER)
    assert caught.value.status_code == 401
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"] == {"type": "authentication_error", "message": GENERIC_401}


BAD_CREDENTIALS: dict[str, list[tuple[bytes, bytes]]] = {
    "none": [],
    "empty bearer": [(b"authorization", b"Bearer ")],
    "wrong key": [(b"authorization", b"Bearer lg-" + b"x" * 43)],
    "fresh random key": [(b"authorization", b"Bearer " + new_key().encode())],
    "wrong x-api-key": [(b"x-api-key", b"lg-wrong-key")],
    "key as basic auth": [(b"authorization", b"Basic " + secret("basic").encode())],
    "key without scheme": [(b"authorization", secret("basic").encode())],
    "hash instead of key": [(b"authorization", b"Bearer " + hash_key(secret("basic")).encode())],
    "key with a suffix": [(b"authorization", b"Bearer " + secret("basic").encode() + b"x")],
    "non-ascii utf-8": [(b"authorization", "Bearer lg-clé-ünïcode-🔑".encode())],
    "non-ascii latin-1": [(b"x-api-key", b"lg-\xe9\xff\xfe")],
    "jwt-shaped garbage": [(b"authorization", b"Bearer eyJhbGciOiJub25lIn0.e30.")],
    "bad base64 jwt": [(b"authorization", b"Bearer a.b.c")],
    "huge 20 KB value": [(b"authorization", b"Bearer lg-" + b"A" * 20_000)],
    "expired declared key": [(b"authorization", b"Bearer " + secret("expired").encode())],
}


@pytest.mark.parametrize("headers", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
async def test_bad_credentials_get_one_identical_401(
    gateway: str, headers: list[tuple[bytes, bytes]]
) -> None:
    answer = await raw_request(gateway, "POST", "/v1/chat/completions", headers, CHAT_BODY)
    assert_generic_401(answer.status, answer.body)
    assert answer.headers["www-authenticate"] == "Bearer"
    models = await raw_request(gateway, "GET", "/v1/models", headers)
    assert_generic_401(models.status, models.body)
    messages = await raw_request(gateway, "POST", "/v1/messages", headers, MESSAGES_BODY)
    assert_generic_401(messages.status, messages.body, anthropic_shape=True)


async def test_malformed_headers_are_refused_cleanly(gateway: str) -> None:
    """A 20 KB key is 401 (or 431), never a 5xx; a 100 KB header is 431; control characters
    in a header are not HTTP at all (400 from the HTTP parser)."""
    answer = await raw_request(
        gateway,
        "POST",
        "/v1/chat/completions",
        [(b"authorization", b"Bearer " + b"B" * 20 * 1024)],
        CHAT_BODY,
    )
    assert answer.status in (401, 431), answer
    huge = await raw_request(
        gateway,
        "POST",
        "/v1/chat/completions",
        [(b"x-api-key", b"C" * 100 * 1024)],
        CHAT_BODY,
    )
    assert huge.status == 431, huge
    assert huge.json()["error"]["code"] == "request_headers_too_large"
    control = await raw_request(
        gateway,
        "POST",
        "/v1/chat/completions",
        [(b"authorization", b"Bearer lg-\x01\x02\x7f")],
        CHAT_BODY,
    )
    assert control.status == 400, control


@pytest.mark.parametrize(
    "key", ["lg-wrong", secret("expired"), "sk-" + "z" * 48, "a.b.c"], ids=repr
)
async def test_the_openai_sdk_raises_authentication_error(gateway: str, key: str) -> None:
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="m-small", messages=USER)
        assert caught.value.status_code == 401
        assert caught.value.code == "invalid_api_key"
        assert caught.value.body == {
            "message": GENERIC_401,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
        with pytest.raises(openai.AuthenticationError):
            await client.embeddings.create(model="m-small", input="hi")


async def test_a_revoked_key_gets_the_same_401(gateway: str) -> None:
    admin = Admin(gateway)
    created = await admin.ok("POST", "/admin/keys", {"name": "soon-revoked"}, status=201)
    key = created["key"]
    assert await chat(gateway, key) == "sim-small"
    await admin.ok("POST", "/admin/keys/soon-revoked/revoke")
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="m-small", messages=USER)
    assert caught.value.body == {
        "message": GENERIC_401,
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    answer = await raw_request(
        gateway, "POST", "/v1/chat/completions", [(b"x-api-key", key.encode())], CHAT_BODY
    )
    assert_generic_401(answer.status, answer.body)
    # A deleted key is refused the same way.
    created = await admin.ok("POST", "/admin/keys", {"name": "soon-deleted"}, status=201)
    assert await chat(gateway, created["key"]) == "sim-small"
    await admin.ok("DELETE", "/admin/keys/soon-deleted", status=204)
    deleted = await raw_request(
        gateway,
        "POST",
        "/v1/chat/completions",
        [(b"authorization", b"Bearer " + created["key"].encode())],
        CHAT_BODY,
    )
    assert_generic_401(deleted.status, deleted.body)


async def test_the_admin_key_is_not_held_to_a_teams_limits(gateway: str) -> None:
    async with openai_client(gateway, secret("in-limited")) as client:
        for _ in range(2):
            await client.chat.completions.create(model="m-small", messages=USER)
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="m-small", messages=USER)
    assert caught.value.code == "rate_limit_exceeded"
    assert "team 'limited'" in caught.value.message
    for model in ("m-small", "m-large", "other", "m-small", "m-small"):
        assert await chat(gateway, ADMIN_KEY, model) in ("sim-small", "sim-large", "sim-other")
    # The admin key in x-api-key, as the Anthropic SDK sends it, too.
    async with anthropic_client(gateway, ADMIN_KEY) as client:
        message = await client.messages.create(model="other", max_tokens=16, messages=USER)
    assert message.type == "message"


async def test_model_allowlists_of_key_and_team(gateway: str) -> None:
    allowed = {
        "globbed": {"m-small", "m-large"},
        "in-narrow": {"m-small"},
        "narrow-globbed": {"m-small"},  # the key's `other` is outside its team's allowlist
        "basic": {"m-small", "m-large", "other"},
    }
    for name, models in allowed.items():
        async with openai_client(gateway, secret(name)) as client:
            for model in ("m-small", "m-large", "other"):
                if model in models:
                    reply = await client.chat.completions.create(model=model, messages=USER)
                    assert reply.choices[0].message.content
                    continue
                with pytest.raises(openai.PermissionDeniedError) as caught:
                    await client.chat.completions.create(model=model, messages=USER)
                assert caught.value.status_code == 403
                assert caught.value.code == "model_not_allowed", caught.value.body
                assert caught.value.param == "model"
                assert model in caught.value.message
                with pytest.raises(openai.PermissionDeniedError):
                    await client.embeddings.create(model=model, input="hi")
    # The same refusal through the Anthropic SDK on /v1/messages.
    async with anthropic_client(gateway, secret("globbed")) as client:
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            await client.messages.create(model="other", max_tokens=16, messages=USER)
    assert denied.value.status_code == 403
    # A model that does not exist is still reported as not allowed when outside the allowlist,
    # and as missing when inside it.
    async with openai_client(gateway, secret("globbed")) as client:
        with pytest.raises(openai.PermissionDeniedError):
            await client.chat.completions.create(model="gpt-unknown", messages=USER)
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="m-unknown", messages=USER)


async def test_models_list_shows_only_what_the_key_may_use(gateway: str) -> None:
    expected = {
        secret("basic"): ["m-small", "m-large", "other"],
        secret("globbed"): ["m-small", "m-large"],
        secret("in-narrow"): ["m-small"],
        secret("narrow-globbed"): ["m-small"],
        ADMIN_KEY: ["m-small", "m-large", "other"],
    }
    for key, models in expected.items():
        async with openai_client(gateway, key) as client:
            listed = [model.id async for model in client.models.list()]
        assert listed == models, key


# -- open and closed gateways ----------------------------------------------------------------


async def readyz(url: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as response:
        assert response.status == 200
        body: dict[str, object] = await response.json()
        return body


async def test_open_gateway_closes_once_a_key_is_stored(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'open.db'}"
    config = config_from_yaml(base_yaml(admin_key=False, database=database))
    async with running_gateway(config) as url:
        assert (await readyz(url))["open_access"] is True
        # Anyone gets in, with no key or with whatever key an SDK insists on sending.
        assert (await raw_request(url, "POST", "/v1/chat/completions", [], CHAT_BODY)).status == 200
        assert await chat(url, "sk-whatever") == "sim-small"
        async with openai_client(url, "x") as client:
            assert len([m async for m in client.models.list()]) == 3
        # The admin API is closed on a gateway without an admin key.
        assert (await Admin(url).request("GET", "/admin/keys"))[0] == 401

        key = new_key()
        async with await Database.open(database) as db:
            await db.keys.create("late", key_hash=hash_key(key), prefix=display_prefix(key))

        async def closed() -> bool | None:
            return True if (await readyz(url))["open_access"] is False else None

        _, elapsed = await wait_for(closed, timeout_s=1.5)
        assert elapsed < 1.5
        answer = await raw_request(url, "POST", "/v1/chat/completions", [], CHAT_BODY)
        assert_generic_401(answer.status, answer.body)
        with pytest.raises(openai.AuthenticationError):
            await chat(url, "sk-whatever")
        assert await chat(url, key) == "sim-small"


@pytest.mark.parametrize(
    "credential",
    [
        f'server: {{admin_key: "{ADMIN_KEY}"}}\n',
        "keys:\n" + declared_key_yaml("only-key"),
        "teams: [{name: lonely}]\n",
    ],
    ids=["admin key", "declared key", "declared team"],
)
async def test_any_configured_credential_closes_the_gateway(credential: str) -> None:
    config = config_from_yaml(base_yaml(admin_key=False) + credential)
    async with running_gateway(config) as url:
        assert (await readyz(url))["open_access"] is False
        answer = await raw_request(url, "POST", "/v1/chat/completions", [], CHAT_BODY)
        assert_generic_401(answer.status, answer.body)


# -- OIDC ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[Issuer]:
    running = await Issuer().start()
    yield running
    await running.close()


@pytest.fixture(scope="module")
async def oidc_gateway(issuer: Issuer) -> AsyncIterator[str]:
    text = (
        base_yaml()
        + f"""teams:
  - {{name: platform/ml, limits: {{rpm: 2}}}}
auth:
  oidc:
    - issuer: "{issuer.url}"
      audience: "{AUDIENCE}"
      team_claim: namespace_path
      require: {{ref_protected: "true"}}
"""
    )
    async with running_gateway(config_from_yaml(text)) as url:
        yield url


async def test_a_gitlab_ci_token_is_accepted(issuer: Issuer, oidc_gateway: str) -> None:
    token = issuer.mint()  # namespace platform: no declared team, so no limits
    for model in ("m-small", "m-large", "other", "m-small", "m-small"):
        assert await chat(oidc_gateway, token, model) in ("sim-small", "sim-large", "sim-other")
    es256 = issuer.mint(key=issuer.ec)
    async with anthropic_client(oidc_gateway, es256) as client:  # in x-api-key
        message = await client.messages.create(model="m-small", max_tokens=16, messages=USER)
    assert message.type == "message"


def bad_tokens(issuer: Issuer) -> dict[str, str]:
    now = int(time.time())
    kid = issuer.rsa.kid
    return {
        "wrong aud": issuer.mint(issuer.claims(aud="https://vault.example.com")),
        "wrong iss": issuer.mint(issuer.claims(iss="https://gitlab.example.com")),
        "expired": issuer.mint(issuer.claims(iat=now - 900, nbf=now - 900, exp=now - 300)),
        "not yet valid": issuer.mint(issuer.claims(nbf=now + 600, exp=now + 900)),
        "alg none": encode({"alg": "none", "typ": "JWT", "kid": kid}, issuer.claims(), None),
        "HS256 keyed with the public key": encode(
            {"alg": "HS256", "typ": "JWT", "kid": kid},
            issuer.claims(),
            hs256_with(issuer.rsa.public_pem()),
        ),
        "unknown kid": issuer.mint(header={"kid": "kid-nobody-published"}),
        "signed by another key": new_token_signed_elsewhere(issuer),
        "tampered claims": tamper(issuer.mint()),
        # Invalid *and* failing the require rule: still 401, a 403 would tell it was valid.
        "wrong aud, unprotected ref": issuer.mint(
            issuer.claims(aud="https://vault.example.com", ref_protected="false")
        ),
    }


def new_token_signed_elsewhere(issuer: Issuer) -> str:
    stranger = new_rsa_key()
    return issuer.mint(key=stranger, header={"kid": issuer.rsa.kid})


def tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["namespace_path"] = "platform/ml-admins"
    forged = b64url(orjson.dumps(claims))
    return f"{header}.{forged}.{signature}"


async def test_bad_tokens_get_the_one_401(issuer: Issuer, oidc_gateway: str) -> None:
    assert await chat(oidc_gateway, issuer.mint()) == "sim-small"  # keys are fetched
    for name, token in bad_tokens(issuer).items():
        answer = await raw_request(
            oidc_gateway,
            "POST",
            "/v1/chat/completions",
            [(b"authorization", f"Bearer {token}".encode())],
            CHAT_BODY,
        )
        assert answer.status == 401, (name, answer.body)
        assert_generic_401(answer.status, answer.body)
        async with openai_client(oidc_gateway, token) as client:
            with pytest.raises(openai.AuthenticationError) as caught:
                await client.chat.completions.create(model="m-small", messages=USER)
        assert caught.value.message.endswith(GENERIC_401), name


async def test_a_valid_token_failing_a_require_rule_is_403(
    issuer: Issuer, oidc_gateway: str
) -> None:
    for claims in (issuer.claims(ref_protected="false"), issuer.claims(ref_protected=None)):
        async with openai_client(oidc_gateway, issuer.mint(claims)) as client:
            with pytest.raises(openai.PermissionDeniedError) as caught:
                await client.chat.completions.create(model="m-small", messages=USER)
        assert caught.value.status_code == 403
        assert "ref_protected" in caught.value.message
        assert "false" not in caught.value.message


async def test_the_team_claim_applies_a_declared_teams_limits(
    issuer: Issuer, oidc_gateway: str
) -> None:
    token = issuer.mint(issuer.claims(namespace_path="platform/ml", project_path="platform/ml/x"))
    async with openai_client(oidc_gateway, token) as client:
        for _ in range(2):
            reply = await client.chat.completions.create(model="m-small", messages=USER)
            assert reply.choices[0].message.content
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="m-small", messages=USER)
    assert caught.value.status_code == 429
    assert "team 'platform/ml'" in caught.value.message
    # Another token of the same team (another job) shares the team's counter.
    other_job = issuer.mint(issuer.claims(namespace_path="platform/ml", job_id="999"))
    with pytest.raises(openai.RateLimitError):
        await chat(oidc_gateway, other_job)
    # A namespace with no declared team is not held to that team's limit.
    free = issuer.mint(issuer.claims(namespace_path="platform/other"))
    for _ in range(4):
        assert await chat(oidc_gateway, free) == "sim-small"
