"""The price table: what a request to an upstream model costs, when the config does not say.

The data is `prices.json` in this package: USD per million input, output and cached-input tokens
for the major models of OpenAI, Anthropic, Google (Gemini API), Mistral and Cohere, copied from
each provider's published pricing page (the file names the pages and the date they were read).
It holds list prices of the standard tier; batch, priority and long-context tiers, cache writes and
cloud resellers' own prices (Bedrock, Vertex AI, Azure) are not in it.

A price in `lockgate.yaml` always wins: `price:` on a target, then on its model, then this table
(see `Router`). To refresh the table, edit `prices.json` from the providers' pages, set `as_of`,
and run `tests/usage/test_prices.py`; docs/pricing.md has the steps.

Names are matched exactly after normalising the spellings providers and configs use (`openai/`,
`models/`, Bedrock region and vendor prefixes and `-v1:0` versions, Vertex `@` versions, dated
snapshots, `-latest`), never by prefix: `gpt-4o` does not price `gpt-4o-mini`. An unknown model
has no price (None), and costs nothing until the config gives it one.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

from lockgate.config.models import Price

__all__ = ["PriceTable", "cost_micros", "default_table"]

DATA_FILE = "prices.json"
MAX_REMEMBERED_NAMES = 4096
"""Lookups are memoised per name; names come from clients (glob routes), so the memo is bounded."""

_REGIONS = frozenset({"us", "eu", "apac", "ap", "jp", "au", "ca", "global", "us-gov"})
"""Bedrock cross-region inference profile prefixes: `us.anthropic.claude-…`."""
_VENDORS = frozenset({"anthropic", "meta", "cohere", "mistral", "amazon", "ai21", "openai"})
"""Bedrock model id vendor prefixes: `anthropic.claude-…`."""

_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")  # -v2:0 (Bedrock), -v2 (Vertex)
_LATEST = re.compile(r"-latest$")
_DATE = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|20\d{6})$")  # -2024-08-06 (OpenAI), -20241022
_GEMINI_VERSION = re.compile(r"-\d{3}$")  # gemini-2.0-flash-001


class PriceTable:
    """Upstream model name -> Price, from the packaged `prices.json` unless given `prices`.

    The file is read on the first lookup, once per table.
    """

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices: Mapping[str, Price] | None = (
            None if prices is None else MappingProxyType({k.lower(): v for k, v in prices.items()})
        )
        self._memo: dict[str, Price | None] = {}

    @property
    def prices(self) -> Mapping[str, Price]:
        """Every priced name, as written in the table."""
        if self._prices is None:
            self._prices = MappingProxyType(_load_packaged())
        return self._prices

    def lookup(self, upstream_model: str) -> Price | None:
        """The table's price for the model a provider is asked for, or None if it has none."""
        if upstream_model in self._memo:
            return self._memo[upstream_model]
        prices = self.prices
        price = next((prices[name] for name in _spellings(upstream_model) if name in prices), None)
        if len(self._memo) >= MAX_REMEMBERED_NAMES:
            self._memo.clear()
        self._memo[upstream_model] = price
        return price


@functools.cache
def default_table() -> PriceTable:
    """The table of the packaged price data, one per process (it is read-only once loaded)."""
    return PriceTable()


def cost_micros(
    price: Price | None, input_tokens: int, output_tokens: int, cached_tokens: int = 0
) -> int:
    """Cost in micro-USD, rounded up: prices are USD per million tokens, i.e. micro-USD per token.

    `cached_tokens` is the part of `input_tokens` the provider served from its prompt cache, billed
    at `price.cached_input` (at the input price when that is None). No price costs nothing. Counts
    come from providers: a nonsensical one (negative, more cached than input) is clamped, since
    accounting must not fail a request that already succeeded.
    """
    if price is None:
        return 0
    input_tokens = max(input_tokens, 0)
    cached_tokens = min(max(cached_tokens, 0), input_tokens)
    cached_price = price.input if price.cached_input is None else price.cached_input
    micros = (
        (input_tokens - cached_tokens) * price.input
        + cached_tokens * cached_price
        + max(output_tokens, 0) * price.output
    )
    # Rounded to a millionth of a micro-USD first: 50 tokens at $1.10 cost 55 micro-USD, not
    # ceil(55.00000000000001) = 56.
    return math.ceil(round(micros, 6))


def _spellings(name: str) -> Iterator[str]:
    """`name`, then successively more normalised forms of it, most specific first."""
    name = name.strip().lower()
    yield name
    name = name.rpartition("/")[2]  # openai/gpt-4o, models/gemini-…, ARNs
    yield name
    name = name.partition("@")[0]  # Vertex: claude-3-5-sonnet-v2@20241022
    yield name
    head, dot, rest = name.partition(".")
    if dot and head in _REGIONS:
        name = rest
        head, dot, rest = name.partition(".")
    if dot and head in _VENDORS:
        name = rest
    yield name
    for pattern in (_BEDROCK_VERSION, _LATEST, _DATE, _GEMINI_VERSION):
        stripped = pattern.sub("", name)
        if stripped != name:
            name = stripped
            yield name


def _load_packaged() -> dict[str, Price]:
    text = resources.files("lockgate.usage").joinpath(DATA_FILE).read_text(encoding="utf-8")
    data = json.loads(text, object_pairs_hook=_unique_keys)
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ValueError(f"{DATA_FILE}: expected an object with a `models` object")
    prices: dict[str, Price] = {}
    for name, entry in data["models"].items():
        try:
            price = Price.model_validate(entry)
        except ValueError as error:
            raise ValueError(f"{DATA_FILE}: price of {name!r}: {error}") from error
        if price.cached_input is not None and price.cached_input > price.input:
            raise ValueError(f"{DATA_FILE}: price of {name!r}: cached_input is above input")
        if name != name.lower():
            raise ValueError(f"{DATA_FILE}: model names are lowercase, got {name!r}")
        prices[name] = price
    return prices


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"{DATA_FILE}: {key!r} is given twice")
        result[key] = value
    return result
