"""Checks across sections: names are unique and every reference points at something declared."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Protocol

from lockgate.config.models import GatewayConfig

__all__ = ["check_references"]

Problem = tuple[tuple[int | str, ...], str]


def check_references(config: GatewayConfig) -> list[Problem]:
    """Every cross-reference mistake, each with the key path it was found at."""
    problems: list[Problem] = []
    problems += _duplicates_of(config.providers, "providers", "provider")
    problems += _duplicates_of(config.models, "models", "model")
    provider_names = [provider.name for provider in config.providers]
    for m, model in enumerate(config.models):
        for t, target in enumerate(model.targets):
            if target.provider not in provider_names:
                problems.append(
                    (
                        ("models", m, "targets", t, "provider"),
                        f"unknown provider {target.provider!r}"
                        + _hint(target.provider, provider_names),
                    )
                )
            if "*" in target.model and "*" not in model.name:
                problems.append(
                    (
                        ("models", m, "targets", t, "model"),
                        "`*` in a target model needs a `*` in the model name it stands for",
                    )
                )
    for p, provider in enumerate(config.providers):
        if provider.type == "azure" and provider.base_url is None:
            problems.append(
                (
                    ("providers", p, "base_url"),
                    "azure needs base_url, e.g. https://RESOURCE.openai.azure.com",
                )
            )
    return problems


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def _duplicates_of(items: Sequence[_Named], section: str, what: str) -> list[Problem]:
    seen: set[str] = set()
    problems: list[Problem] = []
    for index, item in enumerate(items):
        name = item.name
        if name in seen:
            problems.append(((section, index, "name"), f"duplicate {what} name {name!r}"))
        seen.add(name)
    return problems


def _hint(name: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if match:
        return f" (did you mean {match[0]!r}?)"
    if candidates:
        return f"; declared providers: {', '.join(candidates)}"
    return "; no providers are declared"
