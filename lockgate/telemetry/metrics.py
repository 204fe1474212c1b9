"""Prometheus metrics: one `observe` per finished request, rendered at `GET /metrics`.

`Metrics` turns each finished request's record into the labelled values of the families in
`metrics_specs` (kept in `metrics_store`; with several workers copied by `metrics_shared`). Label
values that clients choose (model names, error codes) are capped: past `max_label_values` distinct
values of a label, further ones read `other`.

Target health is read at scrape time from a `health` source (the `HealthBook.snapshot` shape);
with several workers it is the view of the worker that answered.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client import values as prometheus_values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from lockgate.telemetry.metrics_shared import (
    MULTIPROC_ENV,
    SharedCopier,
    prepare_multiprocess_dir,
    remove_multiprocess_dir,
    worker_exited,
)
from lockgate.telemetry.metrics_specs import (
    BUDGET_REJECTED,
    CACHE_HITS,
    COST,
    GENAI_OPERATIONS,
    GENAI_PROVIDERS,
    OVERHEAD,
    RATE_LIMITED,
    REQUEST_DURATION,
    REQUESTS,
    TARGET_HEALTHY,
    TARGET_IN_FLIGHT,
    TIME_TO_FIRST_TOKEN,
    TOKEN_USAGE,
    TOKENS,
    UPSTREAM_DURATION,
)
from lockgate.telemetry.metrics_store import LocalHistogram, LocalStore, LocalValue, exposition

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from lockgate.config.models import ProviderConfig
    from lockgate.usage.record import UsageRecord

__all__ = [
    "MULTIPROC_ENV",
    "OTHER",
    "HealthSource",
    "Metrics",
    "genai_provider_names",
    "prepare_multiprocess_dir",
    "remove_multiprocess_dir",
    "worker_exited",
]

logger = logging.getLogger(__name__)

OTHER = "other"
"""The label value of everything past a label's cap."""
MAX_LABEL_LENGTH = 128
SERIES_CACHE_SIZE = 4096
"""Label sets remembered per raw record key; the cache is emptied when full (client-chosen model
names must not grow it without bound)."""

HealthSource = Callable[[], Mapping[str, Mapping[str, object]]]


class _Cap:
    """The first `limit` distinct values of a label keep their name; later ones read `other`."""

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit or len(value) > MAX_LABEL_LENGTH:
            return OTHER
        self._seen.add(value)
        return value


@dataclass(frozen=True, slots=True)
class _Tokens:
    """A series' token children: the usage histograms (embeddings have no output), the counts."""

    input_usage: LocalHistogram
    output_usage: LocalHistogram | None
    input: LocalValue
    output: LocalValue
    cached: LocalValue


@dataclass(slots=True)
class _Series:
    """The children one kind of record updates (a record's key decides which): those a record
    may not need are made on first use, so no series shows up that never had a value."""

    requests: LocalValue
    duration: LocalHistogram
    model: str
    target: str
    genai: tuple[str, str, str, str]
    ttft: LocalHistogram | None = None
    upstream: LocalHistogram | None = None
    overhead: LocalHistogram | None = None
    tokens: _Tokens | None = None
    cost: LocalValue | None = None
    cache_hits: LocalValue | None = None
    rate_limited: LocalValue | None = None
    budget_rejected: LocalValue | None = None


_Key = tuple[str, str | None, str | None, str | None, int, str | None, str | None, bool, bool]


class Metrics:
    """The gateway's metrics. Build one per process (after `prepare_multiprocess_dir` in a
    supervisor); call `observe` once per finished request, on the event loop's thread."""

    def __init__(
        self,
        *,
        health: HealthSource | None = None,
        providers: Mapping[str, str] | None = None,
        max_label_values: int = 100,
        copy_interval_s: float = 1.0,
    ) -> None:
        """`health`: returns `{target_label: {"state": "healthy"|…, "in_flight": int, …}}`
        (`HealthBook.snapshot`). `providers`: configured provider name → `gen_ai.provider.name`
        (see `genai_provider_names`); names not in it are used as they are. `copy_interval_s`:
        with several workers, how often this one's numbers go to the shared files."""
        self._providers = dict(providers or {})
        self._models = _Cap(max_label_values)
        self._response_models = _Cap(max_label_values)
        self._targets = _Cap(max_label_values)
        self._provider_names = _Cap(max_label_values)
        self._teams = _Cap(max_label_values)
        self._errors = _Cap(max_label_values)
        self._series: dict[_Key, _Series] = {}
        self._health = health
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        self._store = LocalStore()
        self._copier: SharedCopier | None = None
        self._shared: Collector | None = None
        """Every worker's files, with several workers."""
        if self.multiprocess_dir is not None:
            if prometheus_values.ValueClass._multiprocess:
                self._copier = SharedCopier(self._store, copy_interval_s)
            else:
                logger.warning(
                    "%s is set but prometheus_client was imported before it: this process's "
                    "observations are not shared (the other workers' still render)",
                    MULTIPROC_ENV,
                )
            shared = prometheus_multiprocess.MultiProcessCollector
            self._shared = shared(None, self.multiprocess_dir)  # type: ignore[no-untyped-call]

    def set_health_source(self, source: HealthSource | None) -> None:
        """Where target health comes from (a reload may build a new `HealthBook`)."""
        self._health = source

    def request_started(self) -> None:
        self._store.in_flight.value += 1

    def request_finished(self) -> None:
        self._store.in_flight.value -= 1

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type (with several workers: all of them)."""
        if self._copier is not None:
            self._copier.copy()
        if self._shared is None:
            text = self._store.exposition()
        else:
            text = exposition(self._shared.collect())
        return (text + exposition(self._health_families())).encode(), CONTENT_TYPE_LATEST

    def _health_families(self) -> list[Metric]:
        healthy = GaugeMetricFamily(*TARGET_HEALTHY, labels=("target",))
        in_flight = GaugeMetricFamily(*TARGET_IN_FLIGHT, labels=("target",))
        snapshot = self._health() if self._health is not None else {}
        for label, entry in sorted(snapshot.items()):
            target = self._targets(label)
            if target == OTHER:
                continue
            state = entry.get("state", "healthy")
            healthy.add_metric((target,), 1.0 if state == "healthy" else 0.0)
            flying = entry.get("in_flight", 0)
            in_flight.add_metric((target,), float(flying) if isinstance(flying, int) else 0.0)
        return [healthy, in_flight]

    def close(self) -> None:
        """With several workers: stop the copying thread after a last copy."""
        if self._copier is not None:
            self._copier.close()
            self._copier = None

    def observe(self, record: UsageRecord) -> None:
        key: _Key = (
            record.endpoint,
            record.model,
            record.provider,
            record.target_model,
            record.status,
            record.error_type,
            record.team,
            record.stream,
            record.cache_hit,
        )
        series = self._series.get(key)
        if series is None:
            series = self._new_series(key)
        series.requests.value += 1
        series.duration.observe(record.latency_s)
        if series.ttft is not None:
            ttft = record.ttft_s
            if ttft is not None:
                series.ttft.observe(ttft)
        upstream = record.upstream_s
        if upstream is not None:
            child = series.upstream
            if child is None:
                child = series.upstream = self._store.histogram(UPSTREAM_DURATION, (series.target,))
            child.observe(upstream)
            overhead = record.overhead_s  # None without an upstream time
            if overhead is not None:
                child = series.overhead
                if child is None:
                    child = series.overhead = self._store.histogram(OVERHEAD, (record.endpoint,))
                child.observe(overhead)
        input_tokens = record.input_tokens
        output_tokens = record.output_tokens
        if input_tokens or output_tokens:
            tokens = series.tokens or self._tokens(series)
            tokens.input_usage.observe(input_tokens)
            tokens.input.value += input_tokens
            if tokens.output_usage is not None:
                tokens.output_usage.observe(output_tokens)
            if output_tokens:
                tokens.output.value += output_tokens
            if record.cached_tokens:
                tokens.cached.value += record.cached_tokens
        if record.cost_micros:
            cost = series.cost
            if cost is None:
                cost = series.cost = self._store.counter(
                    COST, (series.model, self._team(record.team))
                )
            cost.value += record.cost_micros / 1_000_000
        if series.cache_hits is not None:
            series.cache_hits.value += 1
        if series.rate_limited is not None:
            series.rate_limited.value += 1
        if series.budget_rejected is not None:
            series.budget_rejected.value += 1

    def _tokens(self, series: _Series) -> _Tokens:
        store = self._store
        genai = series.genai
        tokens = series.tokens = _Tokens(
            store.histogram(TOKEN_USAGE, (*genai, "input")),
            # embeddings have no output tokens
            None if genai[0] == "embeddings" else store.histogram(TOKEN_USAGE, (*genai, "output")),
            store.counter(TOKENS, (series.model, "input")),
            store.counter(TOKENS, (series.model, "output")),
            store.counter(TOKENS, (series.model, "cached")),
        )
        return tokens

    def _new_series(self, key: _Key) -> _Series:
        endpoint, model, provider, target_model, status, error_type, team, stream, hit = key
        store = self._store
        model_label = self._models(model or "")
        target = self._targets(f"{provider}/{target_model}") if provider else "none"
        provider_name = self._providers.get(provider, provider) if provider else ""
        genai = (
            GENAI_OPERATIONS.get(endpoint, endpoint),
            self._provider_names(provider_name) if provider_name else "",
            model_label,
            self._response_models(target_model) if target_model else "",
        )
        error = self._errors(error_type) if error_type else ""
        series = _Series(
            requests=store.counter(REQUESTS, (endpoint, model_label, target, str(status), error)),
            duration=store.histogram(REQUEST_DURATION, (*genai, error)),
            model=model_label,
            target=target,
            genai=genai,
        )
        if stream and status == 200:
            series.ttft = store.histogram(TIME_TO_FIRST_TOKEN, genai)
        if hit:
            series.cache_hits = store.counter(CACHE_HITS, (endpoint, model_label))
        if error_type == "rate_limit_exceeded":
            series.rate_limited = store.counter(RATE_LIMITED, (model_label, self._team(team)))
        elif error_type == "budget_exceeded":
            series.budget_rejected = store.counter(BUDGET_REJECTED, (model_label, self._team(team)))
        if len(self._series) >= SERIES_CACHE_SIZE:
            self._series.clear()
        self._series[key] = series
        return series

    def _team(self, team: str | None) -> str:
        return self._teams(team) if team else ""


def genai_provider_names(providers: Iterable[ProviderConfig]) -> dict[str, str]:
    """Configured provider name → its `gen_ai.provider.name` (`openai`, `aws.bedrock`, …)."""
    names: dict[str, str] = {}
    for provider in providers:
        if provider.type == "gemini" and provider.vertex is not None:
            names[provider.name] = "gcp.vertex_ai"
        else:
            names[provider.name] = GENAI_PROVIDERS.get(provider.type, provider.type)
    return names
