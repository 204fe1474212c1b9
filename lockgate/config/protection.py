"""The `cache` and `guardrails` sections: answers kept for reuse, and what may not pass."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lockgate.config.base import StrictModel

__all__ = [
    "CacheConfig",
    "GuardrailRule",
    "GuardrailsConfig",
    "SemanticCacheConfig",
]

MIB = 1024 * 1024
MAX_TTL_S = 30 * 24 * 3600.0


class SemanticCacheConfig(StrictModel):
    """Answers reused for prompts that mean the same (an optional extra: docs/caching.md)."""

    enabled: bool = False
    threshold: float = Field(
        0.92, gt=0, le=1, description="Cosine similarity at or above which a prompt is a hit."
    )
    embeddings: str | None = Field(
        None, description="The embeddings model (a `models` name) that embeds prompts."
    )
    max_entries: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Questions remembered per team and request shape; the oldest go first.",
    )

    @model_validator(mode="after")
    def _needs_a_model(self) -> SemanticCacheConfig:
        if self.enabled and not self.embeddings:
            raise ValueError("`embeddings` must name an embeddings model when enabled")
        return self


class CacheConfig(StrictModel):
    """The response cache: exact matches of the normalised request, kept per team."""

    enabled: bool = True
    backend: Literal["auto", "memory", "redis"] = Field(
        "auto",
        description=(
            "`memory` (per worker, LRU bounded by `max_bytes`), `redis` (shared; needs "
            "`storage.redis`), or `auto`: redis when `storage.redis` is set, else memory."
        ),
    )
    ttl_s: float = Field(
        3600.0,
        gt=0,
        le=MAX_TTL_S,
        description="How long an answer is reused; per model `cache_ttl_s` and the "
        "`x-lockgate-cache-ttl` request header override it.",
    )
    max_bytes: int = Field(
        64 * MIB, ge=MIB, description="Memory backend: total size of the cached answers."
    )
    max_entry_bytes: int = Field(MIB, ge=1024, description="Larger answers are not cached.")
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)


RuleType = Literal["secrets", "pii", "regex"]
RuleAction = Literal["block", "redact", "log"]


class GuardrailRule(StrictModel):
    """One check on the text of messages (input) or answers (output)."""

    type: RuleType = Field(
        description="`secrets` (keys, tokens, private keys), `pii` (personal data) or `regex`."
    )
    action: RuleAction = Field(
        "block",
        description=(
            "`block` (400 `guardrail_blocked`, naming the rule), `redact` (replace with "
            "`[REDACTED:<kind>]`), or `log` (let it pass, log the rule and kind)."
        ),
    )
    name: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="How errors and logs name the rule (default: its type).",
    )
    entities: list[str] | None = Field(
        None,
        max_length=64,
        description="Kinds to look for (e.g. `[email, phone]`); all of the type's when omitted.",
    )
    pattern: str | None = Field(
        None, max_length=4096, description="`regex` rules: a Python regular expression."
    )
    restore: bool = Field(
        False,
        description=(
            "Input `redact` rules: put the original values back where the answer repeats a "
            "placeholder, so the model never sees them but the caller does."
        ),
    )

    @property
    def label(self) -> str:
        return self.name or self.type

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"not a valid regular expression: {error}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GuardrailRule:
        # Imported here: the detectors module compiles its patterns on import.
        from lockgate.guard.detectors import PII_KINDS, SECRET_KINDS

        if self.type == "regex":
            if not self.pattern:
                raise ValueError("a `regex` rule needs `pattern`")
            if self.entities is not None:
                raise ValueError("`entities` is for `secrets` and `pii` rules")
        elif self.pattern is not None:
            raise ValueError(f"`pattern` is for `regex` rules, not `{self.type}`")
        if self.entities is not None:
            known = SECRET_KINDS if self.type == "secrets" else PII_KINDS
            unknown = [kind for kind in self.entities if kind not in known]
            if unknown:
                raise ValueError(
                    f"unknown {self.type} entities {unknown}; known: {', '.join(known)}"
                )
        if self.restore and self.action != "redact":
            raise ValueError("`restore` needs `action: redact`")
        return self


class GuardrailsConfig(StrictModel):
    """Rules on what goes to a model (`input`) and what comes back (`output`)."""

    input: list[GuardrailRule] = Field(default_factory=list, max_length=64)
    output: list[GuardrailRule] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _restore_on_input_only(self) -> GuardrailsConfig:
        if any(rule.restore for rule in self.output):
            raise ValueError("`restore` applies to input rules only")
        return self
