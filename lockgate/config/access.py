"""Config models for who may call and how much: keys, teams, limits, budgets, OIDC, alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from lockgate.config.base import StrictModel
from lockgate.config.protection import GuardrailsConfig

__all__ = [
    "KEY_HASH_PATTERN",
    "KEY_NAME_PATTERN",
    "NAME_PATTERN",
    "AlertConfig",
    "AuthConfig",
    "BudgetConfig",
    "BudgetPeriod",
    "KeyConfig",
    "Label",
    "LimitsConfig",
    "ModelGlob",
    "OidcIssuerConfig",
    "RateLimits",
    "TeamConfig",
]

MAX_COUNT = 10**9
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/@:-]*$"
"""Team names: printable, no spaces (GitLab group paths like `group/sub` fit)."""
KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:-]*$"
"""Key names: as team names, without `/` (a key name is one URL path segment)."""

ModelGlob = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")]
Label = Annotated[str, Field(max_length=1024, pattern=r"^[^\x00]*$")]


class RateLimits(StrictModel):
    """Requests, tokens and concurrent requests allowed; a missing one is unlimited."""

    rpm: int | None = Field(None, ge=1, le=MAX_COUNT, description="Requests per minute.")
    tpm: int | None = Field(
        None,
        ge=1,
        le=MAX_COUNT,
        description="Tokens per minute: estimated before the call, corrected after it.",
    )
    parallel: int | None = Field(
        None, ge=1, le=MAX_COUNT, description="Requests in flight at once."
    )

    @property
    def empty(self) -> bool:
        return self.rpm is None and self.tpm is None and self.parallel is None


class LimitsConfig(RateLimits):
    """Rate limits of a key or team, plus limits per model within them."""

    models: dict[ModelGlob, RateLimits] = Field(
        default_factory=dict,
        max_length=256,
        description=(
            "Limits per model (name or glob, e.g. `gpt-4o*`) within the key's or team's own; "
            "each matching model counts separately."
        ),
    )


BudgetPeriod = Literal["day", "week", "month", "total"]


class BudgetConfig(StrictModel):
    """Spend allowed in a period, in USD, reserved before each call and settled after it."""

    usd: float = Field(gt=0, le=1e9, description="Spend allowed per period, in US dollars.")
    period: BudgetPeriod = Field(
        "month",
        description="Calendar period in UTC (weeks start on Monday); `total` never resets.",
    )
    alert_at: list[float] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Fractions of the budget (e.g. [0.5, 0.8]) at which an alert is sent, once per "
            "threshold and period."
        ),
    )

    @field_validator("alert_at", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, int | float) else value

    @field_validator("alert_at")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        for fraction in value:
            if not 0 < fraction <= 1:
                raise ValueError(f"alert_at fractions are between 0 and 1, got {fraction}")
        return sorted(set(value))


class TeamConfig(StrictModel):
    """A group of keys (and OIDC callers) sharing model access, limits and a budget."""

    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    models: list[ModelGlob] = Field(
        default_factory=lambda: ["*"],
        max_length=1024,
        description="Models (names or globs) the team may use.",
    )
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    budget: BudgetConfig | None = None
    guardrails: GuardrailsConfig | None = Field(
        None, description="Replaces the gateway's `guardrails` for this team's callers."
    )
    metadata: dict[Label, Label] = Field(default_factory=dict, max_length=64)


KEY_HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"


class KeyConfig(StrictModel):
    """A key declared in the config: only its hash is stored (`lockgate keys hash`)."""

    name: str = Field(min_length=1, max_length=128, pattern=KEY_NAME_PATTERN)
    hash: str = Field(
        pattern=KEY_HASH_PATTERN,
        description="`sha256:` and the hex SHA-256 of the key, as `lockgate keys hash` prints it.",
    )
    team: str | None = Field(
        None, max_length=128, pattern=NAME_PATTERN, description="Team the key belongs to."
    )
    models: list[ModelGlob] | None = Field(
        None,
        max_length=1024,
        description="Models (names or globs) the key may use; within its team's.",
    )
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    budget: BudgetConfig | None = None
    expires_at: datetime | None = Field(
        None, description="When the key stops working (ISO 8601; UTC when no zone is given)."
    )
    guardrails: GuardrailsConfig | None = Field(
        None, description="Replaces its team's (or the gateway's) `guardrails` for this key."
    )
    metadata: dict[Label, Label] = Field(default_factory=dict, max_length=64)

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


ClaimValue = str | list[str]


class OidcIssuerConfig(StrictModel):
    """A trusted issuer of JWTs (e.g. GitLab CI `id_tokens`)."""

    issuer: str = Field(
        description="Issuer URL: the tokens' `iss`; its discovery document names the JWKS.",
        examples=["https://gitlab.example.com"],
    )
    audience: ClaimValue = Field(description="Accepted `aud` value(s).")
    team_claim: str | None = Field(
        None,
        description=(
            "Claim whose value names the caller's team (e.g. `namespace_path`). A declared "
            "team of that name applies its policy; otherwise this issuer's `models`, `limits` "
            "and `budget` apply per claim value."
        ),
    )
    team: str | None = Field(None, description="A fixed team for every token of this issuer.")
    require: dict[str, ClaimValue] = Field(
        default_factory=dict,
        description=(
            "Claims that must have these values (a list allows any of them; `*` globs match; "
            "GitLab's path claims compare case-insensitively). A mismatch answers 403."
        ),
    )
    models: list[ModelGlob] = Field(default_factory=lambda: ["*"])
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    budget: BudgetConfig | None = None
    leeway_s: float = Field(30.0, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat.")
    jwks_cache_s: float = Field(
        3600.0, ge=0, description="How long the issuer's keys are cached (unknown kid: refetch)."
    )

    @field_validator("issuer")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("expected an https:// URL")
        return value.rstrip("/")


class AuthConfig(StrictModel):
    """Who may call: JWT issuers (keys are under `keys`, teams under `teams`)."""

    oidc: list[OidcIssuerConfig] = Field(default_factory=list)


class AlertConfig(StrictModel):
    """Where budget alerts go: a webhook receiving JSON (Slack-compatible `text` included)."""

    type: Literal["webhook"] = "webhook"
    url: SecretStr = Field(description="URL that receives a POST per alert.")
