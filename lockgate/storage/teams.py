"""Teams stored in the database (teams may also be declared in the config file).

Every change bumps the change counter in the same transaction, like key changes.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from lockgate.config.models import BudgetConfig, LimitsConfig, TeamConfig
from lockgate.storage.drivers import Driver
from lockgate.storage.engine import Transactions
from lockgate.storage.errors import InvalidRecord, NameTaken
from lockgate.storage.policy import dump_budget, dump_limits, validated
from lockgate.storage.records import StoredTeam, read_teams, stored_team
from lockgate.storage.revision import bump_revision
from lockgate.storage.tables import TeamRow

__all__ = ["StoredTeam", "TeamChanges", "TeamStore"]


class TeamChanges(TypedDict, total=False):
    """What `TeamStore.update` may change; a team's name stays as it is."""

    models: Sequence[str]
    limits: LimitsConfig
    budget: BudgetConfig | None
    metadata: Mapping[str, str]


class TeamStore:
    """The `teams` table: reads on the driver, writes through SQLAlchemy's ORM."""

    __slots__ = ("_driver", "_tx")

    def __init__(self, driver: Driver, transactions: Transactions) -> None:
        self._driver = driver
        self._tx = transactions

    async def create(
        self,
        name: str,
        *,
        models: Sequence[str] = ("*",),
        limits: LimitsConfig | None = None,
        budget: BudgetConfig | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredTeam:
        """Store a new team; `NameTaken` when the name is in use, `InvalidRecord` when invalid."""
        config = _team_config(
            {
                "name": name,
                "models": list(models),
                "limits": limits or LimitsConfig(),
                "budget": budget,
                "metadata": dict(metadata or {}),
            }
        )
        now = datetime.now(UTC)
        row = TeamRow(name=config.name, created_at=now, updated_at=now)
        _apply(row, config)
        try:
            async with self._tx.write() as session:
                session.add(row)
                await session.flush()
                await bump_revision(session)
        except IntegrityError:
            raise NameTaken(f"a team named {config.name!r} already exists") from None
        return _stored(row)

    async def get(self, name: str) -> StoredTeam | None:
        found = await read_teams(self._driver, name=name)
        return found[0] if found else None

    async def list(self) -> builtins.list[StoredTeam]:
        """Every team, by name."""
        return await read_teams(self._driver)

    async def update(self, name: str, /, **changes: Unpack[TeamChanges]) -> StoredTeam | None:
        """Change a team's policy; None when there is no such team."""
        unknown = changes.keys() - TeamChanges.__optional_keys__
        if unknown:
            raise InvalidRecord(f"cannot change {', '.join(sorted(unknown))} of a team")
        async with self._tx.write() as session:
            row = await session.scalar(
                select(TeamRow).where(TeamRow.name == name).with_for_update()
            )
            if row is None:
                return None
            merged: dict[str, Any] = {**_stored(row).as_config().model_dump(), **changes}
            merged["models"] = list(merged["models"])
            merged["metadata"] = dict(merged["metadata"] or {})
            _apply(row, _team_config(merged))
            row.updated_at = datetime.now(UTC)
            await session.flush()
            await bump_revision(session)
            return _stored(row)

    async def delete(self, name: str) -> bool:
        """Remove the team; False when there is no such team. Its keys keep naming it."""
        async with self._tx.write() as session:
            deleted = await session.scalar(
                delete(TeamRow)
                .where(TeamRow.name == name)
                .returning(TeamRow.id)
                .execution_options(synchronize_session=False)
            )
            if deleted is None:
                return False
            await bump_revision(session)
            return True


def _team_config(fields: dict[str, Any]) -> TeamConfig:
    return validated(TeamConfig, fields, "team")


def _apply(row: TeamRow, config: TeamConfig) -> None:
    row.models = list(config.models)
    row.limits = dump_limits(config.limits)
    row.budget = dump_budget(config.budget)
    row.meta = dict(config.metadata)


def _stored(row: TeamRow) -> StoredTeam:
    return stored_team(
        (row.name, row.models, row.limits, row.budget, row.meta, row.created_at, row.updated_at)
    )
