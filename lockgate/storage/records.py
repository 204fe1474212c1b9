"""Stored keys and teams as the gateway uses them, and the queries that read them.

Reads go through the drivers (`drivers.py`), so a serving worker loads its keys and teams
without SQLAlchemy; writes (admin API, CLI) go through the repositories in `keys.py` and
`teams.py`, which build their answers with the same `stored_key` / `stored_team`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from lockgate.config.models import BudgetConfig, KeyConfig, LimitsConfig, TeamConfig
from lockgate.storage.drivers import Driver, Row
from lockgate.storage.policy import load_budget, load_limits

__all__ = [
    "KEY_COLUMNS",
    "TEAM_COLUMNS",
    "StoredKey",
    "StoredTeam",
    "read_keys",
    "read_teams",
    "stored_key",
    "stored_team",
]

KEY_COLUMNS = (
    "id",
    "name",
    "key_hash",
    "prefix",
    "team",
    "models",
    "limits",
    "budget",
    "metadata",
    "expires_at",
    "created_at",
    "revoked_at",
)
"""The `api_keys` columns `stored_key` takes, in its order."""

TEAM_COLUMNS = ("name", "models", "limits", "budget", "metadata", "created_at", "updated_at")
"""The `teams` columns `stored_team` takes, in its order."""

_SELECT_KEYS = f"SELECT {', '.join(KEY_COLUMNS)} FROM api_keys"
_SELECT_TEAMS = f"SELECT {', '.join(TEAM_COLUMNS)} FROM teams"


@dataclass(frozen=True, slots=True)
class StoredKey:
    id: str
    name: str
    key_hash: str
    """`sha256:<hex>`; the key itself is never stored."""
    prefix: str
    """The first characters of the key, to tell keys apart in lists."""
    team: str | None
    models: tuple[str, ...] | None
    """Model names or globs the key may use (within its team's); None: whatever the team allows."""
    limits: LimitsConfig
    budget: BudgetConfig | None
    metadata: Mapping[str, str]
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at <= (now or datetime.now(UTC))

    def as_config(self) -> KeyConfig:
        """The key in the form keys declared in the config file take."""
        return KeyConfig(
            name=self.name,
            hash=self.key_hash,
            team=self.team,
            models=None if self.models is None else list(self.models),
            limits=self.limits,
            budget=self.budget,
            expires_at=self.expires_at,
            metadata=dict(self.metadata),
        )


@dataclass(frozen=True, slots=True)
class StoredTeam:
    name: str
    models: tuple[str, ...]
    limits: LimitsConfig
    budget: BudgetConfig | None
    metadata: Mapping[str, str]
    created_at: datetime
    updated_at: datetime

    def as_config(self) -> TeamConfig:
        """The team in the form teams declared in the config file take."""
        return TeamConfig(
            name=self.name,
            models=list(self.models),
            limits=self.limits,
            budget=self.budget,
            metadata=dict(self.metadata),
        )


def stored_key(values: Sequence[Any]) -> StoredKey:
    """A key from its `KEY_COLUMNS` values, JSON columns decoded and times aware."""
    (id_, name, hash_, prefix, team, models, limits, budget, meta, expires, created, revoked) = (
        values
    )
    owner = f"key {name!r} in the database"
    return StoredKey(
        id=id_,
        name=name,
        key_hash=hash_,
        prefix=prefix,
        team=team,
        models=None if models is None else tuple(models),
        limits=load_limits(limits, owner),
        budget=load_budget(budget, owner),
        metadata=dict(meta),
        expires_at=expires,
        created_at=created,
        revoked_at=revoked,
    )


def stored_team(values: Sequence[Any]) -> StoredTeam:
    """A team from its `TEAM_COLUMNS` values, JSON columns decoded and times aware."""
    name, models, limits, budget, meta, created, updated = values
    owner = f"team {name!r} in the database"
    return StoredTeam(
        name=name,
        models=tuple(models),
        limits=load_limits(limits, owner),
        budget=load_budget(budget, owner),
        metadata=dict(meta),
        created_at=created,
        updated_at=updated,
    )


async def read_keys(
    driver: Driver,
    *,
    name: str | None = None,
    key_hash: str | None = None,
    include_revoked: bool = True,
) -> list[StoredKey]:
    """Keys by creation time: all, or the one with `name` or `key_hash`; revoked ones only with
    `include_revoked`."""
    conditions, params = [], []
    if name is not None:
        conditions.append("name = ?")
        params.append(name)
    if key_hash is not None:
        conditions.append("key_hash = ?")
        params.append(key_hash)
    if not include_revoked:
        conditions.append("revoked_at IS NULL")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await driver.fetch(f"{_SELECT_KEYS}{where} ORDER BY created_at, name", params)
    return [stored_key(_decoded_key(driver, row)) for row in rows]


async def read_teams(driver: Driver, *, name: str | None = None) -> list[StoredTeam]:
    """Every team by name, or the one named `name`."""
    if name is None:
        rows = await driver.fetch(f"{_SELECT_TEAMS} ORDER BY name")
    else:
        rows = await driver.fetch(f"{_SELECT_TEAMS} WHERE name = ?", (name,))
    return [stored_team(_decoded_team(driver, row)) for row in rows]


def _decoded_key(driver: Driver, row: Row) -> tuple[Any, ...]:
    id_, name, hash_, prefix, team, models, limits, budget, meta, expires, created, revoked = row
    return (
        id_,
        name,
        hash_,
        prefix,
        team,
        _json(models),
        _json(limits),
        _json(budget),
        _json(meta),
        None if expires is None else driver.decode_time(expires),
        driver.decode_time(created),
        None if revoked is None else driver.decode_time(revoked),
    )


def _decoded_team(driver: Driver, row: Row) -> tuple[Any, ...]:
    name, models, limits, budget, meta, created, updated = row
    return (
        name,
        _json(models),
        _json(limits),
        _json(budget),
        _json(meta),
        driver.decode_time(created),
        driver.decode_time(updated),
    )


def _json(value: str | None) -> Any:
    """A JSON column's value (SQLAlchemy stores None as JSON `null`, or as SQL NULL)."""
    return None if value is None else orjson.loads(value)
