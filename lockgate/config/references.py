"""Checks across sections: names are unique and every reference points at something declared."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Protocol

from pydantic import SecretStr

from lockgate.cache.local_embeddings import resolve_model
from lockgate.config.models import GatewayConfig, KeyConfig, OidcIssuerConfig, TeamConfig
from lockgate.providers.catalogue import catalogue_entry

__all__ = ["check_references", "shared_counters_problem"]

Problem = tuple[tuple[int | str, ...], str]


def check_references(config: GatewayConfig) -> list[Problem]:
    """Every cross-reference mistake, each with the key path it was found at."""
    problems: list[Problem] = []
    problems += _duplicates_of(config.providers, "providers", "provider")
    problems += _duplicates_of(config.models, "models", "model")
    provider_names = [provider.name for provider in config.providers]
    provider_types = {provider.name: provider.type for provider in config.providers}
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
            if provider_types.get(target.provider) == "local-embeddings":
                try:
                    resolve_model(target.model)
                except ValueError as error:
                    problems.append((("models", m, "targets", t, "model"), str(error)))
            if "*" in target.model and "*" not in model.name:
                problems.append(
                    (
                        ("models", m, "targets", t, "model"),
                        "`*` in a target model needs a `*` in the model name it stands for",
                    )
                )
    problems += _model_references(config)
    problems += _team_references(config)
    problems += _cache_references(config)
    paths = [api.path for api in config.apis]
    for a, path in enumerate(paths):
        if paths.index(path) != a:
            problems.append((("apis", a, "path"), f"path {path} is served twice"))
    problem = shared_counters_problem(config)
    if problem is not None:
        problems.append((("storage", "redis"), problem))
    for p, provider in enumerate(config.providers):
        if provider.type == "azure" and provider.base_url is None:
            problems.append(
                (
                    ("providers", p, "base_url"),
                    "azure needs base_url, e.g. https://RESOURCE.openai.azure.com",
                )
            )
        entry = catalogue_entry(provider.type)
        if entry is not None and entry.key_required and not _has_key(provider.api_key):
            problems.append(
                (
                    ("providers", p, "api_key"),
                    f"provider {provider.name!r} of type {provider.type} needs api_key",
                )
            )
    return problems


def _model_references(config: GatewayConfig) -> list[Problem]:
    """Fallbacks and rules name models that exist, and rules never lead back to themselves."""
    names = [model.name for model in config.models]
    globs = [name.partition("*") for name in names if "*" in name]

    def known(name: str) -> bool:
        return name in names or any(
            name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix + suffix)
            for prefix, _, suffix in globs
        )

    problems: list[Problem] = []
    for m, model in enumerate(config.models):
        for f, fallback in enumerate(model.fallbacks):
            if fallback == model.name:
                problems.append(
                    (("models", m, "fallbacks", f), "a model cannot fall back to itself")
                )
            elif not known(fallback):
                problems.append(
                    (
                        ("models", m, "fallbacks", f),
                        f"unknown model {fallback!r}{_hint(fallback, names, 'models')}",
                    )
                )
        for r, rule in enumerate(model.rules):
            if not known(rule.model):
                problems.append(
                    (
                        ("models", m, "rules", r, "model"),
                        f"unknown model {rule.model!r}{_hint(rule.model, names, 'models')}",
                    )
                )
    rules = {model.name: [rule.model for rule in model.rules] for model in config.models}
    for m, model in enumerate(config.models):
        if _leads_back(model.name, rules):
            problems.append((("models", m, "rules"), f"rules of {model.name!r} lead back to it"))
    return problems


def _has_key(api_key: SecretStr | None) -> bool:
    return api_key is not None and bool(api_key.get_secret_value())


def _leads_back(start: str, rules: dict[str, list[str]]) -> bool:
    pending, seen = list(rules.get(start, [])), set()
    while pending:
        name = pending.pop()
        if name == start:
            return True
        if name not in seen:
            seen.add(name)
            pending.extend(rules.get(name, []))
    return False


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


def _hint(name: str, candidates: list[str], what: str = "providers") -> str:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if match:
        return f" (did you mean {match[0]!r}?)"
    if candidates:
        return f"; declared {what}: {', '.join(candidates)}"
    return f"; no {what} are declared"


def shared_counters_problem(config: GatewayConfig) -> str | None:
    """Several workers with limits or budgets but no Redis would each count alone (DESIGN §1)."""
    if config.server.workers == 1 or config.storage.redis:
        return None
    owners: list[TeamConfig | KeyConfig | OidcIssuerConfig] = [
        *config.teams,
        *config.keys,
        *config.auth.oidc,
    ]
    if any(not o.limits.empty or o.limits.models or o.budget for o in owners):
        return (
            f"server.workers is {config.server.workers} and rate limits or budgets are "
            "configured, but storage.redis is not set: each worker would count alone. "
            "Set storage.redis (e.g. redis://127.0.0.1:6379/0) or run one worker."
        )
    return None


def _cache_references(config: GatewayConfig) -> list[Problem]:
    cache = config.cache
    if cache is None:
        return []
    problems: list[Problem] = []
    if cache.backend == "redis" and not config.storage.redis:
        problems.append((("cache", "backend"), "the redis backend needs storage.redis"))
    embeddings = cache.semantic.embeddings
    names = [model.name for model in config.models]
    if cache.semantic.enabled and embeddings and embeddings not in names:
        problems.append(
            (
                ("cache", "semantic", "embeddings"),
                f"unknown model {embeddings!r}" + _hint(embeddings, names, "models"),
            )
        )
    return problems


def _team_references(config: GatewayConfig) -> list[Problem]:
    problems = _duplicates_of(config.teams, "teams", "team")
    problems += _duplicates_of(config.keys, "keys", "key")
    seen: dict[str, int] = {}
    for k, key in enumerate(config.keys):
        if key.hash in seen:
            problems.append(
                (("keys", k, "hash"), f"the same hash as key {config.keys[seen[key.hash]].name!r}")
            )
        seen.setdefault(key.hash, k)
    issuers = [issuer.issuer for issuer in config.auth.oidc]
    for i, issuer in enumerate(issuers):
        if issuers.index(issuer) != i:
            problems.append((("auth", "oidc", i, "issuer"), f"issuer {issuer} is listed twice"))
    for i, oidc in enumerate(config.auth.oidc):
        if oidc.team and oidc.team_claim:
            problems.append(
                (("auth", "oidc", i, "team"), "set either team or team_claim, not both")
            )
    return problems
