"""The team repository, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lockgate.config.models import BudgetConfig, LimitsConfig, RateLimits, TeamConfig
from lockgate.storage import Database, InvalidRecord, NameTaken


async def test_a_team_gets_the_config_defaults(db: Database) -> None:
    before = datetime.now(UTC)
    created = await db.teams.create("platform")
    assert created.name == "platform"
    assert created.models == ("*",)
    assert created.limits == LimitsConfig()
    assert created.budget is None
    assert dict(created.metadata) == {}
    assert created.created_at == created.updated_at
    assert created.created_at.tzinfo is UTC
    assert before <= created.created_at <= datetime.now(UTC)
    assert await db.teams.get("platform") == created
    assert await db.teams.get("nobody") is None
    assert created.as_config() == TeamConfig(name="platform")


async def test_policy_survives_the_json_round_trip(database_url: str, db: Database) -> None:
    limits = LimitsConfig(rpm=600, parallel=20, models={"gpt-4o": RateLimits(tpm=1_000_000)})
    budget = BudgetConfig(usd=250, period="month", alert_at=[0.9])
    await db.teams.create(
        "group/sub@x:y",
        models=["gpt-4o", "embed-*"],
        limits=limits,
        budget=budget,
        metadata={"cost-centre": "42"},
    )
    async with await Database.open(database_url) as fresh:
        stored = await fresh.teams.get("group/sub@x:y")
    assert stored is not None
    assert stored.models == ("gpt-4o", "embed-*")
    assert stored.limits == limits
    assert stored.budget == budget
    assert dict(stored.metadata) == {"cost-centre": "42"}


async def test_teams_are_listed_by_name(db: Database) -> None:
    for name in ("zeta", "alpha", "mid"):
        await db.teams.create(name)
    assert [team.name for team in await db.teams.list()] == ["alpha", "mid", "zeta"]


async def test_a_taken_or_invalid_name_is_refused(db: Database) -> None:
    await db.teams.create("platform")
    with pytest.raises(NameTaken, match="a team named 'platform' already exists"):
        await db.teams.create("platform", models=["x"])
    with pytest.raises(InvalidRecord, match="invalid team: name: "):
        await db.teams.create("-starts-with-dash")
    with pytest.raises(InvalidRecord, match=r"invalid team: budget\.usd: "):
        await db.teams.create("broke", budget={"usd": -1})  # type: ignore[arg-type]
    assert [team.name for team in await db.teams.list()] == ["platform"]
    assert await db.current_revision() == 1


async def test_update_changes_the_policy_and_the_update_time(db: Database) -> None:
    created = await db.teams.create("platform", metadata={"a": "1"})
    updated = await db.teams.update("platform", models=["gpt-*"], budget=BudgetConfig(usd=3))
    assert updated is not None
    assert updated == await db.teams.get("platform")
    assert updated.models == ("gpt-*",)
    assert updated.budget == BudgetConfig(usd=3)
    assert dict(updated.metadata) == {"a": "1"}
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at
    cleared = await db.teams.update("platform", budget=None, limits=LimitsConfig(rpm=1))
    assert cleared is not None
    assert (cleared.budget, cleared.limits.rpm, cleared.models) == (None, 1, ("gpt-*",))
    assert await db.teams.update("missing", models=["x"]) is None
    with pytest.raises(InvalidRecord, match="cannot change name of a team"):
        await db.teams.update("platform", **{"name": "other"})  # type: ignore[typeddict-unknown-key]


async def test_delete_and_the_revision(db: Database) -> None:
    revision = await db.current_revision()
    await db.teams.create("t")
    await db.teams.update("t", models=["a"])
    assert await db.teams.delete("t") is True
    assert await db.current_revision() == revision + 3
    assert await db.teams.delete("t") is False
    assert await db.teams.update("t", models=["b"]) is None
    assert await db.current_revision() == revision + 3
    assert await db.teams.get("t") is None
