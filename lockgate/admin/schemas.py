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
from lockgate.storage.usage_report import Grouping

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
    "UsageGroup",
    "UsageNumbers",
    "UsageReportView",
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


class UsageNumbers(BaseModel):
    """What a group of requests (or all of a report's) did and cost."""

    requests: int
    errors: int = Field(description="Requests answered with a status of 400 or more.")
    input_tokens: int
    output_tokens: int
    cached_tokens: int = Field(description="Input tokens served from the provider's cache.")
    cost_usd: float
    estimated: int = Field(description="Requests whose tokens the gateway had to estimate.")
    cache_hits: int = Field(description="Requests answered from the gateway's cache.")
    avg_latency_ms: float
    max_latency_ms: float
    avg_ttft_ms: float | None = Field(description="Time to first token of streamed answers.")


class _UsageGroupValues(BaseModel):
    key: str | None = None
    team: str | None = None
    model: str | None = None
    provider: str | None = None
    prompt: str | None = None
    prompt_version: str | None = None
    day: str | None = Field(None, description="UTC date, YYYY-MM-DD.")


class UsageGroup(UsageNumbers, _UsageGroupValues):
    """One row of a report: the values of its grouping (only those; null: none), then numbers."""


class UsageReportView(BaseModel):
    by: Grouping
    since: datetime
    until: datetime | None
    rows: list[UsageGroup]
    totals: UsageNumbers
