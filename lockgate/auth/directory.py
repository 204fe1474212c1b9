"""The keys and teams a gateway knows, from the config file and the database, as one snapshot.

A snapshot is immutable and rebuilt whenever either source changes, so a request reads one
consistent view with no locks. Declared (config) keys and teams win a name clash with stored ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from lockgate.auth.policy import Policy, Principal, Scope
from lockgate.config.models import BudgetConfig, KeyConfig, LimitsConfig, TeamConfig

__all__ = ["Directory", "KeyEntry", "KeyRecord", "TeamRecord"]


@dataclass(frozen=True, slots=True)
class TeamRecord:
    name: str
    models: tuple[str, ...]
    limits: LimitsConfig
    budget: BudgetConfig | None
    declared: bool


@dataclass(frozen=True, slots=True)
class KeyRecord:
    name: str
    hash: str
    team: str | None
    models: tuple[str, ...] | None
    limits: LimitsConfig
    budget: BudgetConfig | None
    expires_at: datetime | None
    declared: bool


@dataclass(frozen=True, slots=True)
class KeyEntry:
    record: KeyRecord
    principal: Principal


class Directory:
    """Key hash -> who it is; team name -> team."""

    __slots__ = ("by_hash", "stored_keys", "team_policies", "teams")

    def __init__(
        self,
        declared_keys: Iterable[KeyConfig],
        declared_teams: Iterable[TeamConfig],
        stored_keys: Iterable[KeyRecord] = (),
        stored_teams: Iterable[TeamRecord] = (),
    ) -> None:
        teams: dict[str, TeamRecord] = {team.name: team for team in stored_teams}
        for team in declared_teams:
            teams[team.name] = TeamRecord(
                team.name, tuple(team.models), team.limits, team.budget, declared=True
            )
        self.teams: Mapping[str, TeamRecord] = teams
        self.team_policies: dict[str, Policy] = {
            name: Policy(allowlists=(team.models,), scopes=(_team_scope(team),))
            for name, team in teams.items()
        }
        keys: dict[str, KeyRecord] = {key.name: key for key in stored_keys}
        for key in declared_keys:
            keys[key.name] = KeyRecord(
                key.name,
                key.hash,
                key.team,
                tuple(key.models) if key.models is not None else None,
                key.limits,
                key.budget,
                key.expires_at,
                declared=True,
            )
        self.stored_keys = sum(1 for key in keys.values() if not key.declared)
        self.by_hash: dict[str, KeyEntry] = {
            key.hash: KeyEntry(key, self._principal(key)) for key in keys.values()
        }

    def _principal(self, key: KeyRecord) -> Principal:
        allowlists: list[tuple[str, ...]] = []
        scopes = [Scope(f"key:{key.name}", f"key '{key.name}'", key.limits, key.budget)]
        if key.models is not None:
            allowlists.append(key.models)
        team = self.teams.get(key.team) if key.team else None
        if team is not None:
            allowlists.append(team.models)
            scopes.append(_team_scope(team))
        return Principal("key", key.name, key.team, Policy(tuple(allowlists), tuple(scopes)))


def _team_scope(team: TeamRecord) -> Scope:
    return Scope(f"team:{team.name}", f"team '{team.name}'", team.limits, team.budget)
