"""The admin API over real HTTP: keys, teams, budgets, limits, OIDC issuers, targets, OpenAPI.

Keys made here are then used through the OpenAI SDK, as their owner would use them.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.access.admin_helpers import (
    ADMIN_KEY,
    USER,
    Admin,
    base_yaml,
    chat,
    declared_key_yaml,
    lockgate_serve,
    openai_client,
    raw_request,
    secret,
    wait_for,
    worker_pids,
)
from tests.auth.issuer import AUDIENCE, JWKS_PATH, Issuer
from tests.conftest import config_from_yaml, free_port, running_gateway

ADMIN_401 = "Invalid credentials: the admin API needs the admin key"

GATEWAY_YAML = (
    base_yaml()
    + """teams:
  - {name: declared-team, models: ["m-*"]}
keys:
"""
    + declared_key_yaml("declared-bot", team="declared-team")
)

EXPECTED_OPERATIONS = {
    ("GET", "/admin/config"),
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys"),
    ("GET", "/admin/keys/{name}"),
    ("PATCH", "/admin/keys/{name}"),
    ("DELETE", "/admin/keys/{name}"),
    ("POST", "/admin/keys/{name}/revoke"),
    ("GET", "/admin/teams"),
    ("POST", "/admin/teams"),
    ("GET", "/admin/teams/{name}"),
    ("PATCH", "/admin/teams/{name}"),
    ("DELETE", "/admin/teams/{name}"),
    ("GET", "/admin/budgets"),
    ("GET", "/admin/limits"),
    ("GET", "/admin/oidc"),
    ("GET", "/admin/targets"),
    ("GET", "/admin/usage"),
    ("POST", "/admin/config/reload"),
}


@pytest.fixture(scope="module")
async def gateway() -> AsyncIterator[str]:
    async with running_gateway(config_from_yaml(GATEWAY_YAML)) as url:
        yield url


@pytest.fixture
def admin(gateway: str) -> Admin:
    return Admin(gateway)


async def operations(url: str) -> set[tuple[str, str]]:
    answer = await raw_request(url, "GET", "/openapi.json")
    assert answer.status == 200
    schema = answer.json()
    return {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


# -- the admin key ---------------------------------------------------------------------------


async def test_openapi_lists_every_admin_path(gateway: str) -> None:
    answer = await raw_request(gateway, "GET", "/openapi.json")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    schema = answer.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Lockgate admin API"
    assert await operations(gateway) == EXPECTED_OPERATIONS
    components = schema["components"]["schemas"]
    assert {"KeyCreate", "KeyCreated", "KeyView", "TeamCreate", "TeamView"} <= set(components)
    assert "key" in components["KeyCreated"]["properties"]
    assert "key" not in components["KeyView"]["properties"]
    assert components["KeyCreate"]["additionalProperties"] is False


BAD_ADMIN_CREDENTIALS: dict[str, list[tuple[bytes, bytes]]] = {
    "no key": [],
    "wrong key": [(b"authorization", b"Bearer not-the-admin-key-at-all")],
    "admin key prefix": [(b"authorization", b"Bearer " + ADMIN_KEY[:-1].encode())],
    "wrong x-api-key": [(b"x-api-key", b"not-the-admin-key-at-all")],
    "client key": [(b"authorization", b"Bearer " + secret("declared-bot").encode())],
    "basic scheme": [(b"authorization", b"Basic " + ADMIN_KEY.encode())],
    "non-ascii": [(b"authorization", "Bearer admïn-kéy".encode())],
}


@pytest.mark.parametrize(
    "headers", BAD_ADMIN_CREDENTIALS.values(), ids=BAD_ADMIN_CREDENTIALS.keys()
)
async def test_every_admin_endpoint_needs_the_admin_key(
    gateway: str, headers: list[tuple[bytes, bytes]]
) -> None:
    for method, template in sorted(EXPECTED_OPERATIONS):
        path = template.replace("{name}", "declared-bot")
        body = b"{}" if method in ("POST", "PATCH") else b""
        answer = await raw_request(gateway, method, path, headers, body)
        assert answer.status == 401, (method, path, answer.body)
        assert answer.json() == {"detail": ADMIN_401}, (method, path)
        assert answer.headers["www-authenticate"] == "Bearer"
    # Nothing was changed by those attempts.
    assert any(
        key["name"] == "declared-bot" for key in await Admin(gateway).ok("GET", "/admin/keys")
    )


async def test_the_admin_key_is_accepted_in_either_header(gateway: str) -> None:
    for header in (b"authorization", b"x-api-key"):
        value = (b"Bearer " if header == b"authorization" else b"") + ADMIN_KEY.encode()
        answer = await raw_request(gateway, "GET", "/admin/teams", [(header, value)])
        assert answer.status == 200, answer.body
        assert [team["name"] for team in answer.json()] == ["declared-team"]


async def test_a_gateway_without_an_admin_key_has_a_closed_admin_api() -> None:
    config = config_from_yaml(base_yaml(admin_key=False) + "keys:\n" + declared_key_yaml("someone"))
    async with running_gateway(config) as url:
        for key in (None, ADMIN_KEY, secret("someone"), ""):
            status, body = await Admin(url, key).request("GET", "/admin/keys")
            assert (status, body) == (401, {"detail": ADMIN_401})
        status, _ = await Admin(url).request("POST", "/admin/keys", {"name": "sneaky"})
        assert status == 401


# -- keys ------------------------------------------------------------------------------------


async def test_a_created_key_is_shown_once_and_works_at_once(gateway: str, admin: Admin) -> None:
    created = await admin.ok(
        "POST",
        "/admin/keys",
        {
            "name": "created-once",
            "team": "declared-team",
            "metadata": {"owner": "alice", "ticket": "OPS-12"},
            "expires_at": "2099-01-01T00:00:00Z",
        },
        status=201,
    )
    key = created["key"]
    assert key.startswith("lg-")
    assert len(key) > 40
    assert created["prefix"] == key[:9]
    assert created["declared"] is False
    assert created["team"] == "declared-team"
    assert created["metadata"] == {"owner": "alice", "ticket": "OPS-12"}
    assert created["expires_at"].startswith("2099-01-01T00:00:00")
    assert created["created_at"] is not None
    assert created["revoked_at"] is None
    # Usable right away, with the team's allowlist.
    assert await chat(gateway, key) == "sim-small"
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.PermissionDeniedError):
            await client.chat.completions.create(model="other", messages=USER)
    # Never shown again.
    shown = await admin.ok("GET", "/admin/keys/created-once")
    assert "key" not in shown
    assert shown["prefix"] == key[:9]
    listed = await admin.ok("GET", "/admin/keys")
    for answer in (shown, listed):
        text = orjson.dumps(answer).decode()
        assert key not in text
        assert key[9:] not in text
        assert "sha256" not in text


async def test_declared_keys_and_teams_are_listed_but_read_only(gateway: str, admin: Admin) -> None:
    keys = await admin.ok("GET", "/admin/keys")
    declared = next(key for key in keys if key["name"] == "declared-bot")
    assert declared["declared"] is True
    assert declared["prefix"] is None
    assert declared["team"] == "declared-team"
    assert await admin.ok("GET", "/admin/keys/declared-bot") == declared
    for method, path, body in (
        ("PATCH", "/admin/keys/declared-bot", {"models": ["other"]}),
        ("POST", "/admin/keys/declared-bot/revoke", None),
        ("DELETE", "/admin/keys/declared-bot", None),
        ("POST", "/admin/keys", {"name": "declared-bot"}),
        ("PATCH", "/admin/teams/declared-team", {"models": ["*"]}),
        ("DELETE", "/admin/teams/declared-team", None),
        ("POST", "/admin/teams", {"name": "declared-team"}),
    ):
        status, answer = await admin.request(method, path, body)
        assert status == 409, (method, path, answer)
        assert "declared in the config file" in answer["detail"]
    teams = await admin.ok("GET", "/admin/teams")
    assert {"name": "declared-team", "declared": True}.items() <= next(
        team for team in teams if team["name"] == "declared-team"
    ).items()
    # The declared key still works, with its team's allowlist.
    assert await chat(gateway, secret("declared-bot"), "m-large") == "sim-large"


async def test_a_duplicate_name_is_409(admin: Admin) -> None:
    await admin.ok("POST", "/admin/keys", {"name": "twice"}, status=201)
    status, answer = await admin.request("POST", "/admin/keys", {"name": "twice"})
    assert status == 409
    assert answer == {"detail": "a key named 'twice' exists already"}
    await admin.ok("POST", "/admin/teams", {"name": "twice-team"}, status=201)
    status, answer = await admin.request("POST", "/admin/teams", {"name": "twice-team"})
    assert status == 409
    assert answer == {"detail": "a team named 'twice-team' exists already"}
    # A revoked key keeps its name.
    await admin.ok("POST", "/admin/keys/twice/revoke")
    status, _ = await admin.request("POST", "/admin/keys", {"name": "twice"})
    assert status == 409


async def test_patching_a_keys_models_applies_at_once(gateway: str, admin: Admin) -> None:
    key = (await admin.ok("POST", "/admin/keys", {"name": "patched"}, status=201))["key"]
    assert await chat(gateway, key, "m-large") == "sim-large"
    changed = await admin.ok("PATCH", "/admin/keys/patched", {"models": ["m-small"]})
    assert changed["models"] == ["m-small"]
    assert "key" not in changed
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.chat.completions.create(model="m-large", messages=USER)
        assert caught.value.code == "model_not_allowed"
        assert [model.id async for model in client.models.list()] == ["m-small"]
    assert await chat(gateway, key, "m-small") == "sim-small"
    # Other fields are left as they were; null lifts the key's own allowlist.
    changed = await admin.ok("PATCH", "/admin/keys/patched", {"metadata": {"a": "b"}})
    assert changed["models"] == ["m-small"]
    changed = await admin.ok("PATCH", "/admin/keys/patched", {"models": None})
    assert changed["models"] is None
    assert changed["metadata"] == {"a": "b"}
    assert await chat(gateway, key, "m-large") == "sim-large"


async def test_unknown_names_are_404(admin: Admin) -> None:
    for method, path, body in (
        ("GET", "/admin/keys/ghost", None),
        ("PATCH", "/admin/keys/ghost", {"models": ["*"]}),
        ("POST", "/admin/keys/ghost/revoke", None),
        ("DELETE", "/admin/keys/ghost", None),
        ("GET", "/admin/teams/ghost/team", None),
        ("PATCH", "/admin/teams/ghost", {"models": ["*"]}),
        ("DELETE", "/admin/teams/ghost", None),
    ):
        status, answer = await admin.request(method, path, body)
        assert status == 404, (method, path, answer)
        assert "ghost" in answer["detail"]


async def test_revocation_reaches_another_gateway_within_a_second(tmp_path: Path) -> None:
    """Two gateways (two workers, or two instances) on one database: a key revoked through one
    is refused by the other within 1 s (default `storage.key_refresh_s`)."""
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    config = config_from_yaml(base_yaml(database=database))
    assert config.storage.key_refresh_s == 0.5
    async with running_gateway(config) as first, running_gateway(config) as second:
        admin = Admin(first)
        key = (await admin.ok("POST", "/admin/keys", {"name": "shared"}, status=201))["key"]
        body = orjson.dumps({"model": "m-small", "messages": USER})
        auth = [(b"authorization", f"Bearer {key}".encode())]

        async def status_on_second(wanted: int) -> int | None:
            answer = await raw_request(second, "POST", "/v1/chat/completions", auth, body)
            assert answer.status in (200, 401), answer
            return answer.status if answer.status == wanted else None

        _, learned = await wait_for(lambda: status_on_second(200), timeout_s=1.0)
        assert learned < 1.0
        listed = await Admin(second).ok("GET", "/admin/keys")
        assert "shared" in [entry["name"] for entry in listed]

        started = time.monotonic()
        revoked = await admin.ok("POST", "/admin/keys/shared/revoke")
        assert revoked["revoked_at"] is not None
        _, waited = await wait_for(lambda: status_on_second(401), timeout_s=1.0)
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"the second gateway refused the key only after {elapsed:.2f} s"
        assert waited <= elapsed
        # On the gateway that revoked it the refusal is immediate.
        answer = await raw_request(first, "POST", "/v1/chat/completions", auth, body)
        assert answer.status == 401
        # Listed only when asked for revoked keys.
        names = [entry["name"] for entry in await admin.ok("GET", "/admin/keys")]
        assert "shared" not in names
        everything = await admin.ok("GET", "/admin/keys?revoked=true")
        assert next(entry for entry in everything if entry["name"] == "shared")["revoked_at"]
        status, _ = await admin.request("POST", "/admin/keys/shared/revoke")
        assert status == 404


# -- teams -----------------------------------------------------------------------------------


async def test_teams_crud_with_a_slash_in_the_name(gateway: str, admin: Admin) -> None:
    created = await admin.ok(
        "POST",
        "/admin/teams",
        {"name": "group/sub", "models": ["m-*"], "metadata": {"gitlab": "group/sub"}},
        status=201,
    )
    assert created == {
        "name": "group/sub",
        "models": ["m-*"],
        "limits": {"rpm": None, "tpm": None, "parallel": None, "models": {}},
        "budget": None,
        "metadata": {"gitlab": "group/sub"},
        "declared": False,
    }
    assert await admin.ok("GET", "/admin/teams/group/sub") == created
    assert created in await admin.ok("GET", "/admin/teams")

    key = (
        await admin.ok("POST", "/admin/keys", {"name": "in-sub", "team": "group/sub"}, status=201)
    )["key"]
    assert await chat(gateway, key, "m-large") == "sim-large"
    changed = await admin.ok("PATCH", "/admin/teams/group/sub", {"models": ["m-small"]})
    assert changed["models"] == ["m-small"]
    assert changed["metadata"] == {"gitlab": "group/sub"}
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.PermissionDeniedError):
            await client.chat.completions.create(model="m-large", messages=USER)
        assert [model.id async for model in client.models.list()] == ["m-small"]

    await admin.ok("DELETE", "/admin/teams/group/sub", status=204)
    status, _ = await admin.request("GET", "/admin/teams/group/sub")
    assert status == 404
    status, _ = await admin.request("DELETE", "/admin/teams/group/sub")
    assert status == 404
    assert "group/sub" not in [team["name"] for team in await admin.ok("GET", "/admin/teams")]


async def test_team_limits_made_through_the_api_apply_to_its_keys(
    gateway: str, admin: Admin
) -> None:
    await admin.ok(
        "POST", "/admin/teams", {"name": "api-limited", "limits": {"rpm": 2}}, status=201
    )
    first = (
        await admin.ok("POST", "/admin/keys", {"name": "lim-1", "team": "api-limited"}, status=201)
    )["key"]
    second = (
        await admin.ok("POST", "/admin/keys", {"name": "lim-2", "team": "api-limited"}, status=201)
    )["key"]
    assert await chat(gateway, first) == "sim-small"
    assert await chat(gateway, second) == "sim-small"
    for key in (first, second):  # both count against the team's two requests a minute
        async with openai_client(gateway, key) as client:
            with pytest.raises(openai.RateLimitError) as caught:
                await client.chat.completions.create(model="m-small", messages=USER)
        assert caught.value.code == "rate_limit_exceeded"
        assert "team 'api-limited'" in caught.value.message
    limits = await admin.ok("GET", "/admin/limits")
    team = next(entry for entry in limits if entry["scope"] == "team:api-limited")
    assert team["rpm"] == 2
    assert team["counters"]["remaining_requests"] == 0


# -- usage: budgets, limits; issuers; targets ------------------------------------------------


async def test_budgets_show_spend_after_a_priced_request(gateway: str, admin: Admin) -> None:
    key = (
        await admin.ok(
            "POST",
            "/admin/keys",
            {"name": "budgeted", "budget": {"usd": 50, "period": "day"}},
            status=201,
        )
    )["key"]
    before = next(
        b for b in await admin.ok("GET", "/admin/budgets") if b["scope"] == "key:budgeted"
    )
    assert before["spent_usd"] == 0
    assert before["budget_usd"] == 50
    assert before["period"] == "day"
    assert before["label"] == "key 'budgeted'"
    async with openai_client(gateway, key) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m-small", messages=USER, max_tokens=64
        )
        reply = raw.parse()
    assert reply.usage is not None
    # m-small costs $1000 / $2000 per million input / output tokens.
    expected = math.ceil(reply.usage.prompt_tokens * 1000 + reply.usage.completion_tokens * 2000)
    assert float(raw.headers["x-lockgate-cost-usd"]) == pytest.approx(expected / 1e6)

    async def spent() -> dict[str, Any] | None:
        budgets = await admin.ok("GET", "/admin/budgets")
        entry = next(b for b in budgets if b["scope"] == "key:budgeted")
        return entry if entry["spent_usd"] > 0 and entry["reserved_usd"] == 0 else None

    after, _ = await wait_for(spent, timeout_s=5)
    assert after["spent_usd"] == pytest.approx(expected / 1e6)
    assert after["period_id"] == before["period_id"]


async def test_limits_show_counters(gateway: str, admin: Admin) -> None:
    key = (
        await admin.ok(
            "POST",
            "/admin/keys",
            {"name": "counted", "limits": {"rpm": 600, "tpm": 100000, "parallel": 4}},
            status=201,
        )
    )["key"]
    entry = next(e for e in await admin.ok("GET", "/admin/limits") if e["scope"] == "key:counted")
    assert (entry["rpm"], entry["tpm"], entry["parallel"]) == (600, 100000, 4)
    assert entry["label"] == "key 'counted'"
    assert entry["counters"]["remaining_requests"] == 600
    assert entry["counters"]["in_flight"] == 0
    for _ in range(3):
        await chat(gateway, key)
    entry = next(e for e in await admin.ok("GET", "/admin/limits") if e["scope"] == "key:counted")
    # 600 a minute refill 10 a second: three requests just made leave at least 597.
    assert 597 <= entry["counters"]["remaining_requests"] < 600
    assert entry["counters"]["remaining_tokens"] < 100000
    assert entry["counters"]["in_flight"] == 0


async def test_targets_show_health(gateway: str, admin: Admin) -> None:
    await chat(gateway, ADMIN_KEY, "m-large")
    targets = await admin.ok("GET", "/admin/targets")
    health = targets["sim/sim-large"]
    assert health["state"] == "healthy"
    assert health["consecutive_failures"] == 0
    assert health["in_flight"] == 0
    assert isinstance(health["latency_ms"], float)


async def test_oidc_lists_issuers_and_their_state() -> None:
    issuer = await Issuer().start()
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        text = (
            base_yaml()
            + f"""auth:
  oidc:
    - {{issuer: "{issuer.url}", audience: "{AUDIENCE}"}}
    - {{issuer: "{dead}", audience: "{AUDIENCE}"}}
"""
        )
        async with running_gateway(config_from_yaml(text)) as url:
            admin = Admin(url)
            assert await chat(url, issuer.mint()) == "sim-small"
            forged = issuer.mint(issuer.claims(iss=dead))
            async with openai_client(url, forged) as client:
                with pytest.raises(openai.AuthenticationError):
                    await client.chat.completions.create(model="m-small", messages=USER)
            status = {entry["issuer"]: entry for entry in await admin.ok("GET", "/admin/oidc")}
            assert set(status) == {issuer.url, dead}
            good = status[issuer.url]
            assert good["jwks_uri"] == issuer.url + JWKS_PATH
            assert good["keys"] == 2
            assert good["last_success"] is not None
            assert good["last_error"] is None
            assert status[dead]["keys"] == 0
            assert status[dead]["last_success"] is None
            assert status[dead]["last_error"]
    finally:
        await issuer.close()
    async with running_gateway(config_from_yaml(base_yaml())) as url:
        assert await Admin(url).ok("GET", "/admin/oidc") == []


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/admin/keys", {"name": "ok-name", "colour": "red"}),
        ("POST", "/admin/keys", {"name": "bad name"}),
        ("POST", "/admin/keys", {"name": "has/slash"}),
        ("POST", "/admin/keys", {"name": "-leading-dash"}),
        ("POST", "/admin/keys", {"name": ""}),
        ("POST", "/admin/keys", {"name": "x" * 129}),
        ("POST", "/admin/keys", {}),
        ("POST", "/admin/keys", {"name": "n", "limits": {"rpm": 0}}),
        ("POST", "/admin/keys", {"name": "n", "limits": {"rpm": "lots"}}),
        ("POST", "/admin/keys", {"name": "n", "limits": {"burst": 3}}),
        ("POST", "/admin/keys", {"name": "n", "budget": {"usd": -1}}),
        ("POST", "/admin/keys", {"name": "n", "budget": {"usd": 1, "period": "fortnight"}}),
        ("POST", "/admin/keys", {"name": "n", "budget": {"usd": 1, "alert_at": [1.5]}}),
        ("POST", "/admin/keys", {"name": "n", "expires_at": "2099-01-01T00:00:00"}),
        ("POST", "/admin/keys", {"name": "n", "expires_at": "soon"}),
        ("POST", "/admin/keys", {"name": "n", "models": [""]}),
        ("POST", "/admin/keys", {"name": "n", "models": "m-*"}),
        ("POST", "/admin/keys", {"name": "n", "team": "bad team"}),
        ("POST", "/admin/keys", {"name": "n", "metadata": {"a": 1}}),
        ("POST", "/admin/keys", ["not", "an", "object"]),
        ("PATCH", "/admin/keys/declared-bot", {"name": "renamed"}),
        ("PATCH", "/admin/keys/declared-bot", {"key": "lg-chosen-by-me"}),
        ("POST", "/admin/teams", {"name": "t", "colour": "red"}),
        ("POST", "/admin/teams", {"name": "bad team"}),
        ("POST", "/admin/teams", {"name": "/leading-slash"}),
        ("POST", "/admin/teams", {"name": "t", "limits": {"parallel": -1}}),
        ("PATCH", "/admin/teams/declared-team", {"name": "other"}),
    ],
)
async def test_invalid_input_is_422(
    admin: Admin, method: str, path: str, body: dict[str, Any] | list[str]
) -> None:
    status, answer = await admin.request(method, path, body)
    assert status == 422, answer
    assert answer["detail"], answer
    assert all("loc" in error and "msg" in error for error in answer["detail"])


async def test_a_body_that_is_not_json_is_422(gateway: str) -> None:
    answer = await raw_request(
        gateway,
        "POST",
        "/admin/keys",
        [(b"authorization", f"Bearer {ADMIN_KEY}".encode())],
        b"{not json",
    )
    assert answer.status == 422, answer
    status, _ = await Admin(gateway).request("GET", "/admin/keys/bad-name-never-created")
    assert status == 404


@pytest.mark.parametrize(
    "expires_at",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"],
    ids=["past year 9999 in UTC", "before year 1 in UTC"],
)
async def test_an_expiry_outside_the_representable_range_is_422(
    admin: Admin, expires_at: str
) -> None:
    """Valid ISO 8601 with a zone, but not a date once moved to UTC: a client error, not 500."""
    name = f"far-future-{expires_at[:4]}"
    status, answer = await admin.request(
        "POST", "/admin/keys", {"name": name, "expires_at": expires_at}
    )
    assert status == 422, (status, answer)
    await admin.ok("POST", "/admin/keys", {"name": f"{name}-patched"}, status=201)
    status, answer = await admin.request(
        "PATCH", f"/admin/keys/{name}-patched", {"expires_at": expires_at}
    )
    assert status == 422, (status, answer)


async def test_limits_show_per_model_counters(gateway: str, admin: Admin) -> None:
    """A key's per-model limits (`limits.models`) are rate limits of the key too: /admin/limits
    lists them with their counters, as it does the key's own."""
    key = (
        await admin.ok(
            "POST",
            "/admin/keys",
            {"name": "per-model", "limits": {"models": {"m-*": {"rpm": 5}}}},
            status=201,
        )
    )["key"]
    assert await chat(gateway, key, "m-small") == "sim-small"
    limits = {entry["scope"]: entry for entry in await admin.ok("GET", "/admin/limits")}
    per_model = [scope for scope in limits if scope.startswith("key:per-model")]
    assert per_model, sorted(limits)
    [scope] = per_model
    assert limits[scope]["rpm"] == 5
    assert limits[scope]["counters"]["remaining_requests"] == 4


@pytest.mark.parametrize(
    "workers_in_file", [True, False], ids=["workers in the file", "--workers on the command line"]
)
async def test_limits_need_redis_with_several_workers(
    tmp_path: Path, workers_in_file: bool
) -> None:
    """docs/auth.md: with server.workers > 1 and no storage.redis, creating a key or team with
    rate limits answers 409 (each worker would count alone). However the worker count is set."""
    path = tmp_path / "lockgate.yaml"
    server = "  workers: 2" if workers_in_file else ""
    path.write_text(base_yaml(database=f"sqlite:///{tmp_path / 'workers.db'}", server=server))
    args = () if workers_in_file else ("--workers", "2")
    with lockgate_serve(path, *args, log=tmp_path / "serve.log", workers=2) as (url, process):
        assert len(worker_pids(process.pid)) == 2
        admin = Admin(url)
        for endpoint, limited in (
            ("/admin/keys", {"name": "counted-alone", "limits": {"rpm": 5}}),
            ("/admin/teams", {"name": "counted-alone", "limits": {"tpm": 500}}),
        ):
            status, answer = await admin.request("POST", endpoint, limited)
            assert status == 409, (endpoint, status, answer)
            assert "storage.redis" in answer["detail"]
        # Without limits a key is fine (on the other worker too, within a second).
        made = await admin.ok("POST", "/admin/keys", {"name": "unlimited"}, status=201)
        auth = [(b"authorization", f"Bearer {made['key']}".encode())]
        body = orjson.dumps({"model": "m-small", "messages": USER})

        async def works_everywhere() -> bool | None:
            for _ in range(6):  # fresh connections: either worker may answer
                answer = await raw_request(url, "POST", "/v1/chat/completions", auth, body)
                if answer.status != 200:
                    return None
            return True

        await wait_for(works_everywhere, timeout_s=2)
