"""An issuer's `require` rules and team claim, compiled once and applied to verified claims.

GitLab quirks handled here (and harmless for other issuers):

- GitLab issues booleans as strings (`ref_protected: "true"`); a real JSON boolean is compared
  by the same string form, so `"true"` in the config matches both.
- Path claims (every claim ending in `_path`, and `ci_config_ref_uri`) compare case-insensitively:
  GitLab paths are case-insensitive, and a token carries them as the project is spelled. The
  exception is `ref_path` (`refs/heads/main`): a Git ref, where `Main` is another branch.
- A `project_path` rule is checked against `job_project_path` when the token has it; see
  `RULE_CLAIM_ALIASES`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lockgate.errors import PermissionDenied

__all__ = ["ClaimRule", "check_rules", "compile_rules", "team_of"]

CASE_INSENSITIVE_CLAIMS = frozenset({"ci_config_ref_uri"})
"""Claims compared case-insensitively besides those ending in `_path`."""
CASE_SENSITIVE_CLAIMS = frozenset({"ref_path"})
"""Claims ending in `_path` that are not GitLab paths: compared exactly."""

RULE_CLAIM_ALIASES: Mapping[str, str] = {"project_path": "job_project_path"}
"""A rule on claim `k` reads claim `RULE_CLAIM_ALIASES[k]` instead whenever the token has it.

In a merge request pipeline from a fork that runs in the target project, GitLab sets
`project_path` (and `namespace_path`) to the fork, the source of the merge request, and
`job_project_path` to the project in which the job actually ran. A `project_path` rule is meant to
name the project whose pipeline may call the gateway, so it is checked against `job_project_path`
whenever the token carries it (cross-project and fork pipelines), and against `project_path`
otherwise (older GitLab versions, other issuers).
"""

_BOOLEAN_WORDS = frozenset({"true", "false"})


@dataclass(frozen=True, slots=True)
class ClaimRule:
    """One `require` entry: the claim must match one of `patterns` (fnmatch globs)."""

    claim: str
    patterns: tuple[re.Pattern[str], ...]

    def compared_claim(self, claims: Mapping[str, Any]) -> str:
        """The claim this rule reads in `claims` (its alias when present)."""
        alias = RULE_CLAIM_ALIASES.get(self.claim)
        return alias if alias is not None and claims.get(alias) is not None else self.claim

    def matches(self, claims: Mapping[str, Any]) -> bool:
        values = _comparable(claims.get(self.compared_claim(claims)))
        return any(pattern.match(value) for pattern in self.patterns for value in values)


def compile_rules(require: Mapping[str, str | list[str]]) -> tuple[ClaimRule, ...]:
    return tuple(
        ClaimRule(claim, tuple(_compile(claim, value) for value in _as_list(allowed)))
        for claim, allowed in require.items()
    )


def check_rules(rules: tuple[ClaimRule, ...], claims: Mapping[str, Any]) -> None:
    """Raise PermissionDenied naming the first claim that fails its rule (never its value)."""
    for rule in rules:
        if not rule.matches(claims):
            claim = rule.compared_claim(claims)
            if claim not in claims:
                raise PermissionDenied(
                    f"The token has no '{claim}' claim, which this gateway requires"
                )
            raise PermissionDenied(f"The token's '{claim}' claim is not allowed by this gateway")


def team_of(
    team_claim: str | None, fixed_team: str | None, claims: Mapping[str, Any]
) -> str | None:
    """The caller's team: the value of `team_claim` if configured, else the fixed team."""
    if team_claim is None:
        return fixed_team
    value = claims.get(team_claim)
    if value is None or value == "":
        raise PermissionDenied(f"The token has no '{team_claim}' claim, which names the team")
    if not isinstance(value, str):
        raise PermissionDenied(
            f"The token's '{team_claim}' claim, which names the team, is not a string"
        )
    return value


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _compile(claim: str, value: str) -> re.Pattern[str]:
    path = claim.endswith("_path") and claim not in CASE_SENSITIVE_CLAIMS
    fold = path or claim in CASE_INSENSITIVE_CLAIMS or value.lower() in _BOOLEAN_WORDS
    return re.compile(fnmatch.translate(value), re.IGNORECASE if fold else 0)


def _comparable(value: object) -> list[str]:
    """The string forms a claim value is compared by: a boolean as `true`/`false`, a number
    as written; a list (e.g. `groups_direct`) matches if any element does."""
    if isinstance(value, list):
        return [text for item in value if not isinstance(item, list) for text in _comparable(item)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float):
        return [str(value)]
    return []
