"""Guardrail rules compiled from config, and what one request's text sets off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lockgate.config.protection import GuardrailRule, RuleAction
from lockgate.errors import GatewayError
from lockgate.guard.detectors import (
    Detector,
    Finding,
    pii_detector,
    regex_detector,
    secrets_detector,
)

__all__ = ["CompiledRule", "GuardrailBlocked", "Hit", "compile_rules", "scan"]


class GuardrailBlocked(GatewayError):
    """A `block` rule matched. The message names the rule and the kind, never the text."""

    status = 400
    type = "invalid_request_error"
    code = "guardrail_blocked"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    label: str
    action: RuleAction
    detector: Detector
    restore: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    start: int
    end: int
    kind: str
    rule: CompiledRule


def compile_rules(rules: Sequence[GuardrailRule]) -> tuple[CompiledRule, ...]:
    return tuple(
        CompiledRule(rule.label, rule.action, _detector(rule), rule.restore) for rule in rules
    )


def _detector(rule: GuardrailRule) -> Detector:
    if rule.type == "secrets":
        return secrets_detector(rule.entities)
    if rule.type == "pii":
        return pii_detector(rule.entities)
    assert rule.pattern is not None  # checked by the config model
    return regex_detector(rule.name or "regex", rule.pattern)


def scan(rules: Sequence[CompiledRule], text: str) -> list[Hit]:
    """Every rule's findings in `text`, in order of position."""
    hits: list[Hit] = []
    for rule in rules:
        hits.extend(_hits(rule, rule.detector.find(text)))
    if len(rules) > 1:
        hits.sort(key=_position)
    return hits


def _hits(rule: CompiledRule, findings: list[Finding]) -> list[Hit]:
    return [Hit(f.start, f.end, f.kind, rule) for f in findings]


def _position(hit: Hit) -> tuple[int, int]:
    return hit.start, -hit.end
