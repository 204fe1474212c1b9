"""The price table: the packaged data, name normalisation, cost per request, config overrides."""

from __future__ import annotations

import json
import math
from datetime import date
from importlib import resources

import aiohttp
import pytest

from lockgate.config.models import Price
from lockgate.providers.registry import build_adapter
from lockgate.routing.health import HealthBook
from lockgate.routing.router import Router
from lockgate.usage.prices import PriceTable, cost_micros, default_table
from tests.conftest import config_from_yaml, running_gateway

TABLE = default_table()


def _raw() -> dict[str, object]:
    text = resources.files("lockgate.usage").joinpath("prices.json").read_text(encoding="utf-8")
    data: dict[str, object] = json.loads(text)
    return data


# --- the data file ---------------------------------------------------------------------------


def test_the_file_says_where_and_when_its_prices_come_from() -> None:
    data = _raw()
    assert set(data) <= {"as_of", "sources", "notes", "models"}
    assert date.fromisoformat(str(data["as_of"])) <= date.today()
    sources = data["sources"]
    assert isinstance(sources, dict)
    assert {"openai", "anthropic", "google", "mistral", "cohere"} <= set(sources)
    assert all(str(url).startswith("https://") for url in sources.values())


def test_every_entry_is_a_valid_price() -> None:
    models = _raw()["models"]
    assert isinstance(models, dict)
    assert len(models) >= 50
    for name, entry in models.items():
        assert name == name.lower().strip(), name
        assert set(entry) == {"input", "output", "cached_input"}, name
        for field in ("input", "output"):
            value = entry[field]
            assert isinstance(value, int | float), name
            assert math.isfinite(value), name
            assert value >= 0, name
        cached = entry["cached_input"]
        if cached is not None:
            assert isinstance(cached, int | float), name
            assert 0 <= cached <= entry["input"], name
        assert entry["input"] > 0, f"{name}: a listed model is not free"
    assert len(TABLE.prices) == len(models)  # the loader accepted them all


def test_each_table_name_prices_itself() -> None:
    for name, price in TABLE.prices.items():
        assert TABLE.lookup(name) == price


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", Price(input=2.5, output=10, cached_input=1.25)),
        ("claude-sonnet-4-5", Price(input=3, output=15, cached_input=0.3)),
        ("claude-3-haiku", Price(input=0.25, output=1.25, cached_input=0.03)),
        ("gemini-2.5-pro", Price(input=1.25, output=10, cached_input=0.125)),
        ("text-embedding-3-small", Price(input=0.02, output=0)),
    ],
)
def test_spot_checks_against_the_providers_pages(model: str, expected: Price) -> None:
    assert TABLE.lookup(model) == expected


# --- name normalisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "table_name"),
    [
        # provider prefixes
        ("openai/gpt-4o", "gpt-4o"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("GPT-4o", "gpt-4o"),
        # dated snapshots and -latest
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("o1-2024-12-17", "o1"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        # Bedrock ids, region prefixes and ARNs
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet"),
        ("apac.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4"),
        ("global.anthropic.claude-opus-4-5-20251101-v1:0", "claude-opus-4-5"),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
            "claude-3-5-haiku",
        ),
        # Vertex @ versions
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),
        ("claude-sonnet-4@20250514", "claude-sonnet-4"),
    ],
)
def test_provider_spellings_find_the_table_entry(spelling: str, table_name: str) -> None:
    assert table_name in TABLE.prices
    assert TABLE.lookup(spelling) == TABLE.prices[table_name]


@pytest.mark.parametrize(
    ("model", "not_this"),
    [
        ("gpt-4o-mini", "gpt-4o"),
        ("gpt-4.1-nano", "gpt-4.1"),
        ("gpt-5-mini", "gpt-5"),
        ("o3-mini", "o3"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash"),
        ("claude-opus-4-1", "claude-opus-4"),
        ("claude-opus-4-5-20251101", "claude-opus-4"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4"),
        ("claude-3-5-haiku-20241022", "claude-3-haiku"),
    ],
)
def test_a_longer_name_is_never_priced_as_its_prefix(model: str, not_this: str) -> None:
    price = TABLE.lookup(model)
    assert price is not None
    assert price is not TABLE.prices[not_this]


@pytest.mark.parametrize(
    "model",
    [
        "o1-mini",  # not listed: must not fall back to o1
        "o1-preview",
        "gpt-4o-audio-preview",
        "gpt-4",
        "gpt-4o2",
        "claude-opus",
        "claude-3-5-sonnet-extra",
        "gemini-2.5-flash-preview-05-20",  # previews were priced apart
        "gemini-2.5",
        "mistral-large-latest",  # the alias moves between versions of different prices
        "command-r",
        "cohere.command-r-plus-v1:0",  # Bedrock's own Cohere price, not Cohere's
        "my-azure-deployment",
        "x?status=503",
        "",
    ],
)
def test_unknown_and_near_miss_names_have_no_price(model: str) -> None:
    assert TABLE.lookup(model) is None


def test_a_dated_snapshot_priced_apart_keeps_its_own_price() -> None:
    assert TABLE.lookup("gpt-4o-2024-05-13") == Price(input=5, output=15)
    assert TABLE.lookup("openai/gpt-4o-2024-05-13") == Price(input=5, output=15)
    assert TABLE.lookup("gpt-4o-2024-11-20") == TABLE.prices["gpt-4o"]


def test_a_given_table_replaces_the_packaged_one() -> None:
    table = PriceTable({"House-Model": Price(input=1, output=2)})
    assert table.lookup("openai/house-model-latest") == Price(input=1, output=2)
    assert table.lookup("gpt-4o") is None


def test_lookups_stay_bounded_under_client_chosen_names() -> None:
    from lockgate.usage import prices

    table = PriceTable({"m": Price(input=1, output=1)})
    for index in range(prices.MAX_REMEMBERED_NAMES * 2):
        assert table.lookup(f"glob-{index}") is None
    assert len(table._memo) <= prices.MAX_REMEMBERED_NAMES
    assert table.lookup("m") == Price(input=1, output=1)


# --- cost per request ------------------------------------------------------------------------


def test_cost_is_micro_usd_per_token_rounded_up() -> None:
    price = Price(input=2.5, output=10)
    assert cost_micros(price, 1_000_000, 0) == 2_500_000
    assert cost_micros(price, 1000, 500) == 2500 + 5000
    assert cost_micros(price, 1, 0) == 3  # 2.5 micro-USD, rounded up
    assert cost_micros(price, 0, 0) == 0
    assert cost_micros(None, 1000, 1000, 10) == 0


def test_float_noise_does_not_round_up_an_exact_cost() -> None:
    assert 50 * 1.1 > 55  # the float product is 55.00000000000001
    assert cost_micros(Price(input=1.1, output=4.4), 50, 0) == 55


def test_cached_input_tokens_cost_the_cached_price() -> None:
    price = Price(input=3, output=15, cached_input=0.3)
    # 10_000 input tokens, 8_000 of them from the cache; 1_000 output tokens
    assert cost_micros(price, 10_000, 1_000, cached_tokens=8_000) == (
        2_000 * 3 + math.ceil(8_000 * 0.3) + 1_000 * 15
    )
    assert cost_micros(price, 10_000, 0, cached_tokens=10_000) == 3_000
    assert cost_micros(price, 10_000, 0, cached_tokens=10_000) < cost_micros(price, 10_000, 0)


def test_without_a_cached_price_cached_tokens_cost_the_input_price() -> None:
    price = Price(input=2, output=8)
    assert cost_micros(price, 1_000, 100, cached_tokens=600) == cost_micros(price, 1_000, 100)


def test_a_table_price_costs_a_request() -> None:
    price = TABLE.lookup("claude-sonnet-4-5-20250929")
    assert cost_micros(price, 2_000, 500, cached_tokens=1_500) == 500 * 3 + 450 + 500 * 15


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens", "cached_tokens", "micros"),
    [(-1, 0, 0, 0), (0, -1, 0, 0), (10, 0, -1, 10), (10, 0, 11, 5)],
)
def test_impossible_token_counts_are_clamped_not_raised(
    input_tokens: int, output_tokens: int, cached_tokens: int, micros: int
) -> None:
    """A provider's odd report must not fail a request that already succeeded."""
    price = Price(input=1, output=1, cached_input=0.5)
    assert cost_micros(price, input_tokens, output_tokens, cached_tokens) == micros


def test_float_noise_does_not_round_a_cost_up() -> None:
    assert cost_micros(Price(input=1.1, output=0), 50, 0) == 55
    assert cost_micros(Price(input=0.15, output=0.6), 1, 1) == 1


# --- config prices beat the table (through the router) ---------------------------------------

PROVIDERS = """
providers:
  - {name: oa, type: openai, base_url: "http://127.0.0.1:9/v1", api_key: k}
  - {name: ant, type: openai, base_url: "http://127.0.0.1:9/v1", api_key: k}
"""


def _router(models_yaml: str, prices: PriceTable | None = None) -> Router:
    config = config_from_yaml(PROVIDERS + models_yaml)
    adapters = {provider.name: build_adapter(provider) for provider in config.providers}
    return Router(config.models, adapters, HealthBook(config.routing.cooldown), prices=prices)


def test_config_prices_beat_the_table_which_beats_nothing() -> None:
    router = _router(
        """
models:
  - name: table
    targets: [{provider: oa, model: gpt-4o-2024-08-06}]
  - name: model-price
    price: {input: 1, output: 2}
    targets:
      - {provider: oa, model: gpt-4o}
      - {provider: ant, model: claude-sonnet-4-5, price: {input: 7, output: 8, cached_input: 0.5}}
  - name: unknown
    targets: [{provider: oa, model: house-model}]
"""
    )
    assert [t.price for t in router.resolve("table").targets] == [TABLE.prices["gpt-4o"]]
    assert [t.price for t in router.resolve("model-price").targets] == [
        Price(input=1, output=2),
        Price(input=7, output=8, cached_input=0.5),
    ]
    assert [t.price for t in router.resolve("unknown").targets] == [None]


def test_glob_targets_are_priced_per_name_they_match() -> None:
    router = _router(
        """
models:
  - name: "openai/*"
    targets: [{provider: oa, model: "*"}]
  - name: "cheap/*"
    price: {input: 0.01, output: 0.02}
    targets: [{provider: oa, model: "*"}]
"""
    )
    assert router.resolve("openai/gpt-4o-mini").targets[0].price == TABLE.prices["gpt-4o-mini"]
    assert router.resolve("openai/gpt-4o").targets[0].price == TABLE.prices["gpt-4o"]
    assert router.resolve("openai/house-model").targets[0].price is None
    assert router.resolve("cheap/gpt-4o").targets[0].price == Price(input=0.01, output=0.02)
    assert router.resolve("openai/gpt-4o") is router.resolve("openai/gpt-4o")  # memoised


def test_the_cost_strategy_orders_by_table_prices_and_unpriced_last() -> None:
    router = _router(
        """
models:
  - name: m
    strategy: cost
    targets:
      - {provider: oa, model: house-model}
      - {provider: oa, model: gpt-4o}
      - {provider: ant, model: claude-3-haiku-20240307}
"""
    )
    ordered = router.candidates(router.resolve("m"), None)
    assert [t.model for t in ordered] == ["claude-3-haiku-20240307", "gpt-4o", "house-model"]


def test_a_router_can_be_given_its_own_table() -> None:
    table = PriceTable({"gpt-4o": Price(input=9, output=9)})
    router = _router("models: [{name: m, targets: [{provider: oa, model: gpt-4o}]}]", table)
    assert router.resolve("m").targets[0].price == Price(input=9, output=9)


async def test_the_unpriced_budget_warning_counts_the_table_as_a_price() -> None:
    yaml = """
providers: [{name: sim, type: simulator}]
teams: [{name: web, budget: {usd: 10, period: month}}]
models:
  - {name: known, targets: [{provider: sim, model: gpt-4o-mini}]}
  - {name: unknown, targets: [{provider: sim, model: sim-small}]}
"""
    async with (
        running_gateway(config_from_yaml(yaml)) as url,
        aiohttp.ClientSession() as session,
        session.get(f"{url}/readyz") as answer,
    ):
        warnings = (await answer.json())["warnings"]
    (unpriced,) = [warning for warning in warnings if "have no price" in warning]
    assert unpriced.endswith(": unknown")
