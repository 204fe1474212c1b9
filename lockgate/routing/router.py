"""Resolve the model a client names to the ordered targets that may serve it."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lockgate.config.models import ModelConfig, Price, RuleConfig, TargetConfig
from lockgate.errors import ModelNotFound
from lockgate.providers.base import ProviderAdapter
from lockgate.routing.facts import RequestFacts, matches
from lockgate.routing.health import HealthBook
from lockgate.routing.strategies import STRATEGIES, Order
from lockgate.usage.prices import PriceTable, default_table

__all__ = ["Route", "Router", "Target"]

MAX_MATCHED_ROUTES = 1024


@dataclass(frozen=True, slots=True)
class Target:
    """A provider adapter and the upstream model it is asked for."""

    adapter: ProviderAdapter
    model: str
    weight: float = 1.0
    context_window: int | None = None
    price: Price | None = None
    label: str = field(init=False)
    unit_price: float = field(init=False)
    """`provider/model`, as reported in `x-lockgate-model` and keyed in the health book."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", f"{self.adapter.name}/{self.model}")
        object.__setattr__(self, "unit_price", _unit_price(self.price))

    def fits(self, facts: RequestFacts) -> bool:
        return self.context_window is None or facts.input_tokens <= self.context_window


@dataclass(frozen=True, slots=True)
class Route:
    """One client-facing model: its targets, how to order them, and where to go next."""

    name: str
    targets: Sequence[Target]
    order: Order
    fallbacks: Sequence[str] = ()
    rules: Sequence[RuleConfig] = ()
    timeout_s: float | None = None
    sized: bool = False
    """Some target has a context window, so requests must be measured against it."""


@dataclass(frozen=True, slots=True)
class _GlobRoute:
    prefix: str
    suffix: str
    config: ModelConfig

    def match(self, name: str) -> str | None:
        """The text `*` stands for in `name` (never empty), or None."""
        if (
            len(name) > len(self.prefix) + len(self.suffix)
            and name.startswith(self.prefix)
            and name.endswith(self.suffix)
        ):
            return name[len(self.prefix) : len(name) - len(self.suffix)]
        return None


class Router:
    """Model name -> route: exact names from a dict, then `*` globs in config order.

    A target's price is its own `price` in the config, else its model's, else the price table's
    for the upstream model (`prices`, by default the packaged table), else None. Glob routes are
    priced when a name first matches them, with the upstream model that name gives.
    """

    def __init__(
        self,
        models: Sequence[ModelConfig],
        adapters: Mapping[str, ProviderAdapter],
        health: HealthBook,
        rng: random.Random | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self._adapters = adapters
        self.health = health
        self._rng = rng or random.Random()
        self._prices = default_table() if prices is None else prices
        self._exact: dict[str, Route] = {}
        self._globs: list[_GlobRoute] = []
        self._matched: dict[str, Route] = {}  # routes built for names a glob matched
        for model in models:
            if "*" in model.name:
                prefix, _, suffix = model.name.partition("*")
                self._globs.append(_GlobRoute(prefix, suffix, model))
            else:
                self._exact[model.name] = self._route(model, model.name, "")

    @property
    def listed_models(self) -> list[str]:
        """Names a client can discover (globs cannot be listed)."""
        return list(self._exact)

    def resolve(self, name: str, facts: RequestFacts | None = None) -> Route:
        """The route for `name`, following its rules (config validation rules out cycles)."""
        route = self._exact.get(name) or self._resolve_glob(name)
        while route.rules and facts is not None:
            target = next((rule.model for rule in route.rules if matches(rule.when, facts)), None)
            if target is None:
                break
            route = self._exact.get(target) or self._resolve_glob(target)
        return route

    def price_ceiling(self, route: Route) -> Price | None:
        """The highest input and output prices among every target that may serve `route`
        (its own and its fallbacks'), for reserving budget before the target is known."""
        prices: list[Price] = []
        seen: set[str] = set()
        pending = [route]
        while pending:
            current = pending.pop()
            if current.name in seen:
                continue
            seen.add(current.name)
            prices += [target.price for target in current.targets if target.price is not None]
            for name in current.fallbacks:
                try:
                    pending.append(self.resolve(name))
                except ModelNotFound:
                    continue
        if not prices:
            return None
        return Price(
            input=max(price.input for price in prices),
            output=max(price.output for price in prices),
        )

    def candidates(self, route: Route, facts: RequestFacts | None) -> list[Target]:
        """The route's targets in strategy order, without those too small for the request."""
        targets = route.targets
        if route.sized and facts is not None:
            targets = [t for t in targets if t.fits(facts)]
        if len(targets) <= 1:
            return list(targets)
        return route.order(targets, self.health, self._rng)

    def _resolve_glob(self, name: str) -> Route:
        route = self._matched.get(name)
        if route is not None:
            return route
        for glob in self._globs:
            matched = glob.match(name)
            if matched is not None:
                if len(self._matched) >= MAX_MATCHED_ROUTES:
                    self._matched.clear()  # client-chosen names: keep the cache bounded
                route = self._matched[name] = self._route(glob.config, name, matched)
                return route
        raise ModelNotFound(name)

    def price(self, model: ModelConfig, target: TargetConfig, upstream: str) -> Price | None:
        """The price of `target` of `model` when it calls `upstream` (see the class docstring)."""
        return target.price or model.price or self._prices.lookup(upstream)

    def _route(self, model: ModelConfig, name: str, matched: str) -> Route:
        targets = []
        for target in model.targets:
            upstream = target.model.replace("*", matched)
            targets.append(
                Target(
                    self._adapters[target.provider],
                    upstream,
                    target.weight,
                    target.context_window,
                    self.price(model, target, upstream),
                )
            )
        return Route(
            name,
            targets,
            STRATEGIES[model.strategy],
            tuple(model.fallbacks),
            tuple(model.rules),
            model.timeout_s,
            any(target.context_window for target in targets),
        )


def _unit_price(price: Price | None) -> float:
    return math.inf if price is None else price.input + price.output
