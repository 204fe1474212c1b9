"""Resolve the model a client names to the target that will serve it."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lockgate.config.models import ModelConfig
from lockgate.errors import ModelNotFound
from lockgate.providers.base import ProviderAdapter

__all__ = ["Route", "Router", "Target"]


@dataclass(frozen=True, slots=True)
class Target:
    """A provider adapter and the upstream model it is asked for."""

    adapter: ProviderAdapter
    model: str
    weight: float

    @property
    def label(self) -> str:
        """`provider/model`, as reported in `x-lockgate-model`."""
        return f"{self.adapter.name}/{self.model}"


@dataclass(frozen=True, slots=True)
class Route:
    """The targets serving one client-facing model name."""

    name: str
    targets: Sequence[Target]
    cumulative_weights: Sequence[float]

    def pick(self, rng: random.Random) -> Target:
        if len(self.targets) == 1:
            return self.targets[0]
        return rng.choices(self.targets, cum_weights=self.cumulative_weights)[0]


@dataclass(frozen=True, slots=True)
class _GlobRoute:
    prefix: str
    suffix: str
    config: ModelConfig

    def match(self, name: str) -> str | None:
        """The text `*` stands for in `name`, or None."""
        if (
            len(name) >= len(self.prefix) + len(self.suffix)
            and name.startswith(self.prefix)
            and name.endswith(self.suffix)
        ):
            return name[len(self.prefix) : len(name) - len(self.suffix)]
        return None


class Router:
    """Model name -> route: exact names from a dict, then `*` globs in config order."""

    def __init__(
        self, models: Sequence[ModelConfig], adapters: Mapping[str, ProviderAdapter]
    ) -> None:
        self._adapters = adapters
        self._exact: dict[str, Route] = {}
        self._globs: list[_GlobRoute] = []
        for model in models:
            if "*" in model.name:
                prefix, _, suffix = model.name.partition("*")
                self._globs.append(_GlobRoute(prefix, suffix, model))
            else:
                self._exact[model.name] = self._route(model, "")
        self._rng = random.Random()

    @property
    def listed_models(self) -> list[str]:
        """Names a client can discover (globs cannot be listed)."""
        return list(self._exact)

    def resolve(self, name: str) -> Target:
        route = self._exact.get(name)
        if route is None:
            route = self._resolve_glob(name)
        return route.pick(self._rng)

    def _resolve_glob(self, name: str) -> Route:
        for glob in self._globs:
            matched = glob.match(name)
            if matched is not None and matched:
                return self._route(glob.config, matched, name)
        raise ModelNotFound(name)

    def _route(self, model: ModelConfig, matched: str, name: str | None = None) -> Route:
        targets = [
            Target(
                self._adapters[target.provider],
                target.model.replace("*", matched),
                target.weight,
            )
            for target in model.targets
        ]
        cumulative, total = [], 0.0
        for target in targets:
            total += target.weight
            cumulative.append(total)
        return Route(name or model.name, targets, cumulative)
