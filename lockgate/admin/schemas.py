"""Request and response bodies of the admin API (they make its OpenAPI description)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from lockgate.config.models import (
    KEY_NAME_PATTERN,
    NAME_PATTERN,
    BudgetConfig,
    Label,
    LimitsConfig,
    ModelGlob,
)

__all__ = [
    "BudgetStatus",
    "KeyChange",
    "KeyCreate",
    "KeyCreated",
    "KeyView",
    "LimitStatus",
    "ReloadResult",
    "TeamChange",
    "TeamCreate",
    "TeamView",
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyChange(_Input):
    """Fields to change on a stored key; those left out stay as they are."""

    team: str | None = Field(None, max_length=128, pattern=NAME_PATTERN)
    models: list[ModelGlob] | None = Field(None, max_length=1024)
    limits: LimitsConfig | None = None
    budget: BudgetConfig | None = None
    expires_at: AwareDatetime | None = None
    metadata: dict[Label, Label] | None = Field(None, max_length=64)


class KeyCreate(KeyChange):
    name: str = Field(min_length=1, max_length=128, pattern=KEY_NAME_PATTERN)


class KeyView(BaseModel):
    name: str
    prefix: str | None = Field(description="The key's first characters (stored keys only).")
    team: str | None
    models: list[str] | None
    limits: LimitsConfig
    budget: BudgetConfig | None
    expires_at: datetime | None
    metadata: dict[str, str]
    created_at: datetime | None
    revoked_at: datetime | None
    declared: bool = Field(description="Declared in the config file: read-only here.")


class KeyCreated(KeyView):
    key: str = Field(description="The key itself. Shown this once; only its hash is stored.")


class TeamChange(_Input):
    models: list[ModelGlob] | None = Field(None, max_length=1024)
    limits: LimitsConfig | None = None
    budget: BudgetConfig | None = None
    metadata: dict[Label, Label] | None = Field(None, max_length=64)


class TeamCreate(TeamChange):
    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)


class TeamView(BaseModel):
    name: str
    models: list[str]
    limits: LimitsConfig
    budget: BudgetConfig | None
    metadata: dict[str, str]
    declared: bool


class BudgetStatus(BaseModel):
    scope: str
    label: str
    period: str
    period_id: str
    budget_usd: float
    spent_usd: float
    reserved_usd: float


class LimitStatus(BaseModel):
    scope: str
    label: str
    rpm: int | None
    tpm: int | None
    parallel: int | None
    counters: dict[str, object]


class ReloadResult(BaseModel):
    status: str
    errors: list[str] = []
