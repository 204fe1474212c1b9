"""`GET /admin/usage` over real HTTP: a running gateway reports the ledger of its database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from lockgate.storage import Database
from lockgate.storage.usage import usage_values
from tests.access.admin_helpers import ADMIN_KEY, Admin, base_yaml
from tests.conftest import config_from_yaml, running_gateway
from tests.storage.test_usage_report import EVERYTHING, EXPECTED, NUMBERS, ledger, record

ADMIN_401 = "Invalid credentials: the admin API needs the admin key"
MARCH = {"since": "2025-03-01"}


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A gateway with an admin key whose SQLite database holds the test ledger, and two
    requests of the last hour (for the default window)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('usage') / 'gateway.db'}"
    recent = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    async with running_gateway(config_from_yaml(base_yaml(database=url))) as gateway_url:
        async with await Database.open(url) as db:
            await db.usage.insert(ledger())
            await db.usage.insert(
                [
                    usage_values(record("recent-1", recent, team="t9", model="m9", latency_ms=5)),
                    usage_values(record("recent-2", recent, team="t9", model="m9", latency_ms=7)),
                ]
            )
        yield gateway_url


@pytest.fixture
def admin(gateway: str) -> Admin:
    return Admin(gateway)


async def report(admin: Admin, **params: str) -> dict[str, Any]:
    answer: dict[str, Any] = await admin.ok("GET", "/admin/usage?" + urlencode(params))
    return answer


def numbers(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[name] for name in NUMBERS)


@pytest.mark.parametrize("by", list(EXPECTED))
async def test_every_grouping_over_http(admin: Admin, by: str) -> None:
    answer = await report(admin, by=by, since="2025-03-01", until="2025-04-01")
    assert answer["by"] == by
    assert answer["since"] == "2025-03-01T00:00:00Z"
    assert answer["until"] == "2025-04-01T00:00:00Z"
    names = {"prompt": ("prompt", "prompt_version"), "day": ("day",)}.get(by, (by,))
    got = []
    for row in answer["rows"]:
        assert set(row) == {*names, *NUMBERS}  # only this grouping's values
        got.append((tuple(row[name] for name in names), numbers(row)))
    assert got == EXPECTED[by]
    assert set(answer["totals"]) == set(NUMBERS)
    assert numbers(answer["totals"]) == EVERYTHING


async def test_the_default_window_is_the_last_seven_days(admin: Admin) -> None:
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)
    answer = await report(admin)
    assert answer["by"] == "model"
    since = datetime.fromisoformat(answer["since"])
    assert timedelta(0) <= since - before <= timedelta(seconds=5)
    assert answer["until"] is None
    assert [(row["model"], row["requests"]) for row in answer["rows"]] == [("m9", 2)]
    assert answer["totals"]["avg_latency_ms"] == 6.0
    # Empty parameters are not given.
    empty = await report(admin, by="team", since="", until="", team="", key="", model="")
    assert [(row["team"], row["requests"]) for row in empty["rows"]] == [("t9", 2)]


async def test_filters_and_windows(admin: Admin) -> None:
    answer = await report(admin, by="model", team="t2", **MARCH)
    assert [(row["model"], row["requests"], row["cost_usd"]) for row in answer["rows"]] == [
        ("m1", 3, 0.0012)
    ]
    answer = await report(admin, by="day", key="alice", **MARCH)
    assert [(row["day"], row["requests"]) for row in answer["rows"]] == [("2025-03-10", 2)]
    answer = await report(admin, by="team", model="m1", key="bob", **MARCH)
    assert [(row["team"], row["errors"]) for row in answer["rows"]] == [("t2", 1)]
    answer = await report(admin, by="day", since="2025-03-10T23:00:00Z", until="2025-03-11T01:00")
    assert [(row["day"], row["requests"]) for row in answer["rows"]] == [
        ("2025-03-10", 1),
        ("2025-03-11", 1),
    ]
    nothing = await report(admin, by="team", since="2025-01-01", until="2025-02-01")
    assert nothing["rows"] == []
    assert nothing["totals"]["requests"] == 0
    assert nothing["totals"]["avg_ttft_ms"] is None


async def test_the_admin_key_is_required(admin: Admin) -> None:
    assert await admin.request("GET", "/admin/usage", use_key=False) == (
        401,
        {"detail": ADMIN_401},
    )
    assert await admin.request("GET", "/admin/usage", key="not-the-admin-key") == (
        401,
        {"detail": ADMIN_401},
    )
    # Bad parameters are not looked at before the key.
    status, _ = await admin.request("GET", "/admin/usage?by=bogus", use_key=False)
    assert status == 401


async def test_a_bad_grouping_is_422_naming_the_choices(admin: Admin) -> None:
    status, answer = await admin.request("GET", "/admin/usage?by=bogus")
    assert status == 422
    (error,) = answer["detail"]
    assert error["loc"] == ["query", "by"]
    assert error["msg"] == "Input should be 'key', 'team', 'model', 'provider', 'prompt' or 'day'"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "since=7x",
            "since: expected a duration like 30m, 24h, 7d or 2w, or a date or time like "
            "2025-01-31 or 2025-01-31T12:00:00Z; got '7x'",
        ),
        (
            "since=1d&until=yesterday",
            "until: expected a duration like 30m, 24h, 7d or 2w, or a date or time like "
            "2025-01-31 or 2025-01-31T12:00:00Z; got 'yesterday'",
        ),
        ("since=1d&until=2d", "until '2d' is not after since '1d'"),
        # No database stores NUL (PostgreSQL fails the query): refused before asking.
        ("model=a%00b", "model: must not contain NUL characters"),
    ],
)
async def test_a_bad_parameter_is_422_naming_it(admin: Admin, query: str, message: str) -> None:
    assert await admin.request("GET", f"/admin/usage?{query}") == (422, {"detail": message})


async def test_the_operation_is_in_the_openapi_description(admin: Admin) -> None:
    schema = await admin.ok("GET", "/openapi.json")
    operation = schema["paths"]["/admin/usage"]["get"]
    assert operation["tags"] == ["usage"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert set(parameters) == {"by", "since", "until", "team", "key", "model"}
    assert parameters["by"]["schema"]["enum"] == [
        "key",
        "team",
        "model",
        "provider",
        "prompt",
        "day",
    ]
    assert ADMIN_KEY not in str(schema)


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A database of its own on the test server (the server's is shared by the whole run)."""
    name = f"lockgate_usage_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(postgres_server_url).set(database=name).render_as_string(False)
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def test_a_postgres_gateway_reports_too(postgres_url: str) -> None:
    config = config_from_yaml(base_yaml(database=postgres_url))
    async with running_gateway(config) as url:
        async with await Database.open(postgres_url) as db:
            await db.usage.insert(ledger())
        answer = await report(Admin(url), by="day", since="2025-03-01", until="2025-04-01")
    days = [((row["day"],), numbers(row)) for row in answer["rows"]]
    assert days == EXPECTED["day"]
