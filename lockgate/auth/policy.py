"""A caller's policy: which models it may use, which rate limits and budgets it counts against.

Policies are built once per key or team (when keys and teams load) and shared by every request
of that caller, so the hot path only reads them. Per-model quotas are memoised per model name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from lockgate.config.models import BudgetConfig, LimitsConfig, RateLimits
from lockgate.limits import BudgetScope, Quota

__all__ = ["Policy", "Principal", "Scope", "model_allowed"]

MICROS_PER_USD = 1_000_000
MAX_MEMO = 1024

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Scope:
    """One counter owner: a key, a team or an OIDC caller group, with its limits and budget."""

    key: str
    """Counter identity, e.g. `key:ci-bot` or `team:platform`."""
    label: str
    """How messages name it, e.g. `key 'ci-bot'`."""
    limits: LimitsConfig
    budget: BudgetConfig | None = None


def model_allowed(model: str, allowlist: Sequence[str]) -> bool:
    return any(pattern == model or fnmatch.fnmatchcase(model, pattern) for pattern in allowlist)


@dataclass(slots=True)
class Policy:
    """What one caller may do, merged from its key and team (both must allow a thing)."""

    allowlists: tuple[tuple[str, ...], ...]
    scopes: tuple[Scope, ...]
    budgets: tuple[BudgetScope, ...] = field(init=False)
    limited: bool = field(init=False)
    """Some rate limit or budget applies (else admission has nothing to count)."""
    _quotas: dict[str, tuple[Quota, ...]] = field(default_factory=dict, init=False, repr=False)
    _allowed: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.budgets = tuple(
            BudgetScope(
                key=scope.key,
                label=scope.label,
                limit_micros=round(scope.budget.usd * MICROS_PER_USD),
                period=scope.budget.period,
                alert_at=tuple(scope.budget.alert_at),
            )
            for scope in self.scopes
            if scope.budget is not None
        )
        self.limited = bool(self.budgets) or any(
            not scope.limits.empty or scope.limits.models for scope in self.scopes
        )

    def allows(self, model: str) -> bool:
        allowed = self._allowed.get(model)
        if allowed is None:
            allowed = all(model_allowed(model, allowlist) for allowlist in self.allowlists)
            _remember(self._allowed, model, allowed)
        return allowed

    def quotas(self, model: str) -> tuple[Quota, ...]:
        """The scopes' own quotas, then each per-model quota whose glob matches `model`."""
        quotas = self._quotas.get(model)
        if quotas is None:
            quotas = tuple(
                quota
                for quota in self.all_quotas()
                if "|model:" not in quota.key
                or model_allowed(model, (quota.key.partition("|model:")[2],))
            )
            _remember(self._quotas, model, quotas)
        return quotas

    def all_quotas(self) -> tuple[Quota, ...]:
        """Every quota this policy can charge: its scopes' own and all their per-model ones."""
        found: list[Quota] = []
        for scope in self.scopes:
            if not scope.limits.empty:
                found.append(_quota(scope.key, scope.label, scope.limits))
            for pattern, limits in scope.limits.models.items():
                if not limits.empty:
                    found.append(
                        _quota(
                            f"{scope.key}|model:{pattern}",
                            f"{scope.label} on model '{pattern}'",
                            limits,
                        )
                    )
        return tuple(found)


UNRESTRICTED = Policy(allowlists=(), scopes=())


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling and under which policy."""

    kind: Literal["open", "admin", "key", "oidc"]
    name: str
    team: str | None
    policy: Policy
    claims: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    """A verified OIDC token's claims (e.g. GitLab's `project_path`); None for other callers."""

    @classmethod
    def open_access(cls) -> Principal:
        return cls("open", "anonymous", None, UNRESTRICTED)

    @classmethod
    def admin(cls) -> Principal:
        return cls("admin", "admin", None, UNRESTRICTED)


def _quota(key: str, label: str, limits: RateLimits) -> Quota:
    return Quota(key=key, label=label, rpm=limits.rpm, tpm=limits.tpm, parallel=limits.parallel)


def _remember(memo: dict[str, V], model: str, value: V) -> None:
    if len(memo) >= MAX_MEMO:
        memo.clear()  # model names come from clients: keep the memo bounded
    memo[model] = value
