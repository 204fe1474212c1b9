"""The key repository, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from lockgate.config.models import BudgetConfig, KeyConfig, LimitsConfig, RateLimits
from lockgate.storage import Conflict, Database, InvalidRecord, NameTaken
from tests.storage.raw import key_hash, query


async def test_a_created_key_reads_back_the_same(db: Database) -> None:
    before = datetime.now(UTC)
    created = await db.keys.create(
        "ci-bot", key_hash=key_hash(1), prefix="lg-Ab12Cd", team="platform"
    )
    assert str(uuid.UUID(created.id)) == created.id
    assert (created.name, created.key_hash, created.prefix) == ("ci-bot", key_hash(1), "lg-Ab12Cd")
    assert created.team == "platform"
    assert created.models is None
    assert created.limits == LimitsConfig()
    assert created.budget is None
    assert dict(created.metadata) == {}
    assert created.expires_at is None
    assert created.revoked_at is None
    assert not created.revoked
    assert created.created_at.tzinfo is UTC
    assert before <= created.created_at <= datetime.now(UTC)
    assert await db.keys.get("ci-bot") == created
    assert await db.keys.find_by_hash(key_hash(1)) == created
    assert await db.keys.list() == [created]
    assert await db.keys.get("nobody") is None
    assert await db.keys.find_by_hash(key_hash(2)) is None


async def test_policy_survives_the_json_round_trip(database_url: str, db: Database) -> None:
    limits = LimitsConfig(
        rpm=60,
        tpm=100_000,
        parallel=4,
        models={"gpt-4o*": RateLimits(rpm=10), "claude-*": RateLimits(tpm=5000, parallel=1)},
    )
    budget = BudgetConfig(usd=12.5, period="week", alert_at=[0.8, 0.5])
    await db.keys.create(
        "policy",
        key_hash=key_hash(7),
        prefix="lg-policy",
        models=["gpt-4o*", "claude-*"],
        limits=limits,
        budget=budget,
        metadata={"owner": "ci", "ticket": "OPS-1"},
    )
    async with await Database.open(database_url) as fresh:
        stored = await fresh.keys.get("policy")
    assert stored is not None
    assert stored.models == ("gpt-4o*", "claude-*")
    assert isinstance(stored.limits, LimitsConfig)
    assert stored.limits == limits
    assert stored.limits.models["claude-*"].parallel == 1
    assert isinstance(stored.budget, BudgetConfig)
    assert stored.budget == budget
    assert stored.budget.alert_at == [0.5, 0.8]
    assert dict(stored.metadata) == {"owner": "ci", "ticket": "OPS-1"}
    assert stored.as_config() == KeyConfig(
        name="policy",
        hash=key_hash(7),
        models=["gpt-4o*", "claude-*"],
        limits=limits,
        budget=budget,
        metadata={"owner": "ci", "ticket": "OPS-1"},
    )
    # The columns hold the config's own JSON form, readable by any SQL tool.
    [(raw_limits, raw_budget)] = await query(
        database_url, "SELECT limits, budget FROM api_keys WHERE name = 'policy'"
    )
    assert _json(raw_limits) == limits.model_dump(mode="json")
    assert _json(raw_budget) == budget.model_dump(mode="json")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def test_expiry_round_trips_as_an_aware_utc_time(db: Database) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2030, 6, 1, 12, 30, 15, 123456, tzinfo=india)
    created = await db.keys.create(
        "expiring", key_hash=key_hash(1), prefix="lg-exp", expires_at=moment
    )
    stored = await db.keys.get("expiring")
    assert stored is not None
    assert stored.expires_at == moment
    assert stored.expires_at == datetime(2030, 6, 1, 7, 0, 15, 123456, tzinfo=UTC)
    assert stored.expires_at.tzinfo is UTC
    assert created.expires_at == stored.expires_at
    assert not stored.expired(datetime(2030, 6, 1, 7, 0, tzinfo=UTC))
    assert stored.expired(datetime(2030, 6, 1, 7, 0, 16, tzinfo=UTC))
    # An expired key is still "active" (not revoked): expiry is checked when it is used.
    assert [key.name for key in (await db.directory())[0]] == ["expiring"]


@pytest.mark.parametrize(
    "moment",
    [
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-14))),
        datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=14))),
    ],
)
async def test_an_expiry_that_is_no_date_in_utc_is_refused(db: Database, moment: datetime) -> None:
    with pytest.raises(InvalidRecord, match="invalid key: expires_at: out of range once in UTC"):
        await db.keys.create("far", key_hash=key_hash(1), prefix="lg-far", expires_at=moment)
    await db.keys.create("near", key_hash=key_hash(2), prefix="lg-near")
    with pytest.raises(InvalidRecord, match="expires_at: out of range"):
        await db.keys.update("near", expires_at=moment)
    assert [(key.name, key.expires_at) for key in await db.keys.list()] == [("near", None)]
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    updated = await db.keys.update("near", expires_at=last)
    assert updated is not None
    assert updated.expires_at == last
    assert (await db.keys.get("near")) == updated


async def test_a_naive_expiry_is_taken_as_utc(db: Database) -> None:
    await db.keys.create(
        "naive", key_hash=key_hash(1), prefix="lg-naive", expires_at=datetime(2031, 1, 1, 9, 0)
    )
    stored = await db.keys.get("naive")
    assert stored is not None
    assert stored.expires_at == datetime(2031, 1, 1, 9, 0, tzinfo=UTC)


async def test_a_taken_name_is_refused_and_nothing_changes(db: Database) -> None:
    await db.keys.create("dup", key_hash=key_hash(1), prefix="lg-one")
    revision = await db.current_revision()
    with pytest.raises(NameTaken, match="a key named 'dup' already exists"):
        await db.keys.create("dup", key_hash=key_hash(2), prefix="lg-two")
    with pytest.raises(Conflict, match="same hash") as caught:
        await db.keys.create("other", key_hash=key_hash(1), prefix="lg-one")
    assert not isinstance(caught.value, NameTaken)
    assert await db.current_revision() == revision
    assert [(key.name, key.prefix) for key in await db.keys.list()] == [("dup", "lg-one")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "has space", "key_hash": key_hash(1), "prefix": "lg-x"}, "invalid key: name: "),
        ({"name": "k", "key_hash": "md5:abc", "prefix": "lg-x"}, "invalid key: hash: "),
        ({"name": "k", "key_hash": key_hash(1), "prefix": ""}, "prefix must be 1 to 32"),
    ],
)
async def test_an_invalid_key_is_refused(
    db: Database, fields: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidRecord, match=message):
        await db.keys.create(fields["name"], key_hash=fields["key_hash"], prefix=fields["prefix"])
    assert await db.keys.list(include_revoked=True) == []
    assert await db.current_revision() == 0


async def test_revoked_keys_leave_the_active_set(db: Database) -> None:
    await db.keys.create("a", key_hash=key_hash(1), prefix="lg-a")
    await db.keys.create("b", key_hash=key_hash(2), prefix="lg-b")
    assert await db.keys.revoke("a") is True
    assert await db.keys.revoke("a") is False
    assert await db.keys.revoke("missing") is False
    revoked = await db.keys.get("a")
    assert revoked is not None
    assert revoked.revoked
    assert revoked.revoked_at is not None
    assert revoked.revoked_at.tzinfo is UTC
    assert [key.name for key in await db.keys.list()] == ["b"]
    assert [key.name for key in await db.keys.list(include_revoked=True)] == ["a", "b"]
    assert [key.name for key in (await db.directory())[0]] == ["b"]
    found = await db.keys.find_by_hash(key_hash(1))
    assert found is not None
    assert found.revoked


async def test_update_changes_the_policy_only(db: Database) -> None:
    created = await db.keys.create(
        "k", key_hash=key_hash(1), prefix="lg-k", team="a", models=["x"], metadata={"a": "1"}
    )
    expires = datetime(2032, 2, 2, tzinfo=UTC)
    updated = await db.keys.update(
        "k",
        team=None,
        models=None,
        limits=LimitsConfig(rpm=5),
        budget=BudgetConfig(usd=1),
        expires_at=expires,
        metadata={"b": "2"},
    )
    assert updated is not None
    assert updated == await db.keys.get("k")
    assert (updated.team, updated.models, updated.limits.rpm) == (None, None, 5)
    assert updated.budget == BudgetConfig(usd=1)
    assert updated.expires_at == expires
    assert dict(updated.metadata) == {"b": "2"}
    assert (updated.id, updated.key_hash, updated.created_at) == (
        created.id,
        created.key_hash,
        created.created_at,
    )
    partly = await db.keys.update("k", team="c")
    assert partly is not None
    assert (partly.team, partly.limits.rpm) == ("c", 5)
    assert await db.keys.update("missing", team="x") is None


async def test_an_invalid_update_changes_nothing(db: Database) -> None:
    await db.keys.create("k", key_hash=key_hash(1), prefix="lg-k", models=["x"])
    revision = await db.current_revision()
    with pytest.raises(InvalidRecord, match=r"invalid key: models\.0"):
        await db.keys.update("k", models=[""])
    with pytest.raises(InvalidRecord, match="cannot change name of a key"):
        await db.keys.update("k", **{"name": "renamed"})  # type: ignore[typeddict-unknown-key]
    stored = await db.keys.get("k")
    assert stored is not None
    assert stored.models == ("x",)
    assert await db.current_revision() == revision


async def test_delete_removes_the_key(db: Database) -> None:
    await db.keys.create("gone", key_hash=key_hash(1), prefix="lg-gone")
    assert await db.keys.delete("gone") is True
    assert await db.keys.delete("gone") is False
    assert await db.keys.get("gone") is None
    # The name and the hash are free again.
    await db.keys.create("gone", key_hash=key_hash(1), prefix="lg-gone")


async def test_every_change_bumps_the_revision_and_nothing_else_does(db: Database) -> None:
    steps = [
        (db.keys.create("k", key_hash=key_hash(1), prefix="lg-k"), 1),
        (db.keys.get("k"), 0),
        (db.keys.list(include_revoked=True), 0),
        (db.keys.update("k", team="t"), 1),
        (db.keys.update("missing", team="t"), 0),
        (db.keys.revoke("k"), 1),
        (db.keys.revoke("k"), 0),
        (db.keys.delete("k"), 1),
        (db.keys.delete("k"), 0),
    ]
    for step, (operation, bump) in enumerate(steps):
        before = await db.current_revision()
        await operation
        assert await db.current_revision() == before + bump, f"step {step}"


async def test_concurrent_changes_from_two_workers_all_land(
    database_url: str, db: Database
) -> None:
    names = [f"k{number}" for number in range(12)]
    for number, name in enumerate(names):
        await db.keys.create(name, key_hash=key_hash(number), prefix="lg-k")
    start = await db.current_revision()
    async with await Database.open(database_url) as other:
        # Each update reads then writes; on SQLite that must not fail with "database is locked".
        await asyncio.gather(
            *(
                (db if number % 2 else other).keys.update(name, limits=LimitsConfig(rpm=number + 1))
                for number, name in enumerate(names)
            )
        )
    assert await db.current_revision() == start + len(names)
    assert [key.limits.rpm for key in await db.keys.list()] == list(range(1, 13))
