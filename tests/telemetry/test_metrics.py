"""`lockgate.telemetry.metrics`: what `observe` records, as the Prometheus text a scrape reads.

Every test parses `render()` with prometheus_client's own parser; the multiprocess test runs real
worker processes that share a `PROMETHEUS_MULTIPROC_DIR`, and the dashboard test checks that every
query of `deploy/grafana/lockgate.json` names metrics and labels this module really exports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from lockgate.config.models import ProviderConfig
from lockgate.telemetry.metrics import (
    MULTIPROC_ENV,
    Metrics,
    genai_provider_names,
    prepare_multiprocess_dir,
    remove_multiprocess_dir,
    worker_exited,
)
from lockgate.usage.record import UsageRecord

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "lockgate.json"


@pytest.fixture(autouse=True)
def _one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)


def record(**fields: Any) -> UsageRecord:
    """A finished request: 200 ms in all, answer ready at 50 ms, 40 ms of it upstream."""
    result = UsageRecord(request_id="r", endpoint=fields.pop("endpoint", "chat"))
    result.started = 100.0
    result.ready = 100.05
    result.ended = 100.2
    for name, value in fields.items():
        setattr(result, name, value)
    return result


def served(**fields: Any) -> UsageRecord:
    base: dict[str, Any] = {
        "model": "gpt-4o",
        "provider": "openai",
        "target_model": "gpt-4o-2024",
        "team": "ml",
        "upstream_s": 0.04,
        "attempts": 1,
    }
    return record(**(base | fields))


def samples(metrics: Metrics) -> list[Sample]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    families = list(text_string_to_metric_families(body.decode()))
    # each family once, with its HELP and TYPE: else the text is not what the parser expects
    assert len({family.name for family in families}) == len(families), body.decode()
    assert all(family.documentation and family.type != "unknown" for family in families)
    return [s for family in families for s in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    """The one sample called `name` whose labels include `labels`."""
    matching = [
        s for s in found if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matching) == 1, (name, labels, matching)
    return matching[0].value


def names(found: list[Sample]) -> set[str]:
    return {s.name for s in found}


def test_requests_are_counted_by_endpoint_model_target_status_and_error() -> None:
    metrics = Metrics()
    metrics.observe(served())
    metrics.observe(served())
    metrics.observe(served(status=504, error_type="upstream_timeout"))
    metrics.observe(record(model="nope", status=404, error_type="model_not_found"))

    found = samples(metrics)
    ok = {"endpoint": "chat", "model": "gpt-4o", "target": "openai/gpt-4o-2024", "status": "200"}
    assert value(found, "lockgate_requests_total", **ok, error_type="") == 2
    timeout = ok | {"status": "504", "error_type": "upstream_timeout"}
    assert value(found, "lockgate_requests_total", **timeout) == 1
    unknown = {"model": "nope", "target": "none", "status": "404", "error_type": "model_not_found"}
    assert value(found, "lockgate_requests_total", **unknown) == 1


def test_request_duration_follows_the_genai_conventions() -> None:
    metrics = Metrics(providers={"openai": "openai", "claude": "anthropic"})
    metrics.observe(served())
    metrics.observe(served(endpoint="messages", provider="claude", target_model="sonnet"))
    metrics.observe(served(status=502, error_type="upstream_error"))

    found = samples(metrics)
    labels = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "gpt-4o",
        "gen_ai_response_model": "gpt-4o-2024",
    }
    duration = "gen_ai_server_request_duration_seconds"
    assert value(found, f"{duration}_count", **labels, error_type="") == 1
    assert value(found, f"{duration}_sum", **labels, error_type="") == pytest.approx(0.2)
    assert value(found, f"{duration}_bucket", **labels, error_type="", le="0.16") == 0
    assert value(found, f"{duration}_bucket", **labels, error_type="", le="0.32") == 1
    assert value(found, f"{duration}_bucket", **labels, error_type="", le="+Inf") == 1
    assert value(found, f"{duration}_count", **labels, error_type="upstream_error") == 1
    messages = {"gen_ai_provider_name": "anthropic", "gen_ai_response_model": "sonnet"}
    assert value(found, f"{duration}_count", **messages, gen_ai_operation_name="chat") == 1


def test_time_to_first_token_only_for_successful_streams() -> None:
    metrics = Metrics()
    metrics.observe(served(stream=True))
    metrics.observe(served(stream=True))
    metrics.observe(served())
    metrics.observe(served(stream=True, status=502, error_type="upstream_error"))

    found = samples(metrics)
    ttft = "gen_ai_server_time_to_first_token_seconds"
    assert value(found, f"{ttft}_count", gen_ai_request_model="gpt-4o") == 2
    assert value(found, f"{ttft}_sum", gen_ai_request_model="gpt-4o") == pytest.approx(0.1)
    assert value(found, f"{ttft}_bucket", gen_ai_request_model="gpt-4o", le="0.06") == 2
    assert value(found, f"{ttft}_bucket", gen_ai_request_model="gpt-4o", le="0.04") == 0


def test_upstream_and_gateway_overhead() -> None:
    metrics = Metrics()
    metrics.observe(served())
    metrics.observe(served(upstream_s=0.03))
    metrics.observe(record(model="gpt-4o", status=429, error_type="rate_limit_exceeded"))

    found = samples(metrics)
    target = {"target": "openai/gpt-4o-2024"}
    assert value(found, "lockgate_upstream_duration_seconds_count", **target) == 2
    assert value(found, "lockgate_upstream_duration_seconds_sum", **target) == pytest.approx(0.07)
    # ready at 50 ms, minus 40 and 30 ms upstream; the rejection never had an upstream
    assert value(found, "lockgate_overhead_seconds_count", endpoint="chat") == 2
    assert value(found, "lockgate_overhead_seconds_sum", endpoint="chat") == pytest.approx(0.03)
    assert value(found, "lockgate_overhead_seconds_bucket", endpoint="chat", le="0.01") == 1
    assert value(found, "lockgate_overhead_seconds_bucket", endpoint="chat", le="0.025") == 2


def test_tokens_and_cost() -> None:
    metrics = Metrics()
    usage = {"input_tokens": 100, "output_tokens": 20, "cached_tokens": 64}
    metrics.observe(served(**usage, cost_micros=1_500))
    metrics.observe(served(**usage, cost_micros=500, team="web"))
    metrics.observe(
        served(endpoint="embeddings", model="embed", target_model="embed", input_tokens=7)
    )
    metrics.observe(served(status=401, error_type="invalid_api_key"))  # no usage: not observed

    found = samples(metrics)
    usage_name = "gen_ai_client_token_usage"
    chat = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "gpt-4o"}
    assert value(found, f"{usage_name}_count", **chat, gen_ai_token_type="input") == 2
    assert value(found, f"{usage_name}_sum", **chat, gen_ai_token_type="input") == 200
    assert value(found, f"{usage_name}_sum", **chat, gen_ai_token_type="output") == 40
    assert value(found, f"{usage_name}_bucket", **chat, gen_ai_token_type="output", le="16.0") == 0
    assert value(found, f"{usage_name}_bucket", **chat, gen_ai_token_type="output", le="64.0") == 2
    embed = {"gen_ai_operation_name": "embeddings", "gen_ai_request_model": "embed"}
    assert value(found, f"{usage_name}_sum", **embed, gen_ai_token_type="input") == 7
    assert not [
        s
        for s in found
        if s.name.startswith(usage_name)
        and s.labels.get("gen_ai_operation_name") == "embeddings"
        and s.labels["gen_ai_token_type"] == "output"
    ]

    assert value(found, "lockgate_tokens_total", model="gpt-4o", type="input") == 200
    assert value(found, "lockgate_tokens_total", model="gpt-4o", type="output") == 40
    assert value(found, "lockgate_tokens_total", model="gpt-4o", type="cached") == 128
    assert value(found, "lockgate_tokens_total", model="embed", type="input") == 7
    assert value(found, "lockgate_cost_usd_total", model="gpt-4o", team="ml") == pytest.approx(
        0.0015
    )
    assert value(found, "lockgate_cost_usd_total", model="gpt-4o", team="web") == pytest.approx(
        0.0005
    )


def test_cache_hits_rate_limits_and_budgets() -> None:
    metrics = Metrics()
    metrics.observe(record(model="gpt-4o", cache_hit=True))
    metrics.observe(record(model="gpt-4o", cache_hit=True))
    metrics.observe(served())
    for _ in range(3):
        metrics.observe(
            record(model="gpt-4o", team="ml", status=429, error_type="rate_limit_exceeded")
        )
    metrics.observe(record(model="gpt-4o", team="ml", status=429, error_type="budget_exceeded"))
    metrics.observe(served(status=429, error_type="upstream_rate_limited"))

    found = samples(metrics)
    assert value(found, "lockgate_cache_hits_total", endpoint="chat", model="gpt-4o") == 2
    assert value(found, "lockgate_rate_limited_total", model="gpt-4o", team="ml") == 3
    assert value(found, "lockgate_budget_rejected_total", model="gpt-4o", team="ml") == 1


def test_client_chosen_label_values_are_capped() -> None:
    metrics = Metrics(max_label_values=3)
    for model in ("a", "b", "c", "d", "e", "a"):
        metrics.observe(record(model=model, status=404, error_type="model_not_found"))
    metrics.observe(record(model="x" * 500, status=404, error_type="model_not_found"))

    found = samples(metrics)
    requests = {s.labels["model"]: s.value for s in found if s.name == "lockgate_requests_total"}
    assert requests == {"a": 2, "b": 1, "c": 1, "other": 3}


def test_error_codes_are_capped_too() -> None:
    metrics = Metrics(max_label_values=2)
    for code in ("upstream_error", "upstream_timeout", "weird_1", "weird_2"):
        metrics.observe(served(status=502, error_type=code))

    found = samples(metrics)
    errors = {s.labels["error_type"] for s in found if s.name == "lockgate_requests_total"}
    assert errors == {"upstream_error", "upstream_timeout", "other"}


def test_target_health_is_read_at_scrape_time() -> None:
    book: dict[str, dict[str, object]] = {
        "openai/gpt-4o": {"state": "healthy", "in_flight": 3},
        "azure/gpt-4o": {"state": "cooling_down", "in_flight": 0},
        "claude/sonnet": {"state": "probing", "in_flight": 1},
    }
    metrics = Metrics(health=lambda: book)

    found = samples(metrics)
    assert value(found, "lockgate_target_healthy", target="openai/gpt-4o") == 1
    assert value(found, "lockgate_target_healthy", target="azure/gpt-4o") == 0
    assert value(found, "lockgate_target_healthy", target="claude/sonnet") == 0
    assert value(found, "lockgate_target_in_flight", target="openai/gpt-4o") == 3

    book["azure/gpt-4o"]["state"] = "healthy"
    assert value(samples(metrics), "lockgate_target_healthy", target="azure/gpt-4o") == 1

    metrics.set_health_source(lambda: {"new/model": {"state": "healthy", "in_flight": 0}})
    healthy = [s for s in samples(metrics) if s.name == "lockgate_target_healthy"]
    assert [s.labels["target"] for s in healthy] == ["new/model"]


def test_in_flight() -> None:
    metrics = Metrics()
    assert value(samples(metrics), "lockgate_in_flight") == 0
    metrics.request_started()
    metrics.request_started()
    metrics.request_finished()
    assert value(samples(metrics), "lockgate_in_flight") == 1


def test_instances_do_not_share_values() -> None:
    first, second = Metrics(), Metrics()
    first.observe(served())
    assert value(samples(first), "lockgate_requests_total", model="gpt-4o") == 1
    assert "lockgate_requests_total" not in names(samples(second))


def test_genai_provider_names() -> None:
    providers = [
        ProviderConfig.model_validate({"name": "main", "type": "openai", "api_key": "k"}),
        ProviderConfig.model_validate(
            {
                "name": "az",
                "type": "azure",
                "base_url": "https://x.openai.azure.com",
                "api_key": "k",
            }
        ),
        ProviderConfig.model_validate(
            {"name": "vx", "type": "gemini", "api_key": "k", "vertex": {"project": "p"}}
        ),
        ProviderConfig.model_validate({"name": "gm", "type": "gemini", "api_key": "k"}),
        ProviderConfig.model_validate({"name": "local", "type": "ollama"}),
    ]
    assert genai_provider_names(providers) == {
        "main": "openai",
        "az": "azure.ai.openai",
        "vx": "gcp.vertex_ai",
        "gm": "gcp.gemini",
        "local": "ollama",
    }


def test_prepare_multiprocess_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert prepare_multiprocess_dir(1) is None
    assert MULTIPROC_ENV not in os.environ

    path = prepare_multiprocess_dir(4)
    assert path is not None
    assert os.environ[MULTIPROC_ENV] == path
    assert os.path.isdir(path)
    assert os.listdir(path) == []
    remove_multiprocess_dir(path)
    assert not os.path.exists(path)
    assert MULTIPROC_ENV not in os.environ

    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))  # an operator's choice (a tmpfs): inside it
    path = prepare_multiprocess_dir(2)
    assert path is not None
    assert Path(path).parent == tmp_path
    remove_multiprocess_dir(path)


# --- several workers -------------------------------------------------------------------------------


def worker_records() -> list[UsageRecord]:
    """What each worker of the multiprocess test observes, once per round (imported by it)."""
    return [
        served(
            stream=True, target_model="gpt-4o", input_tokens=10, output_tokens=5, cost_micros=1000
        ),
        record(model="gpt-4o", team="ml", status=429, error_type="rate_limit_exceeded"),
        record(model="gpt-4o", cache_hit=True),
        served(endpoint="embeddings", model='odd "name" \\', target_model="emb", input_tokens=3),
    ]


WORKER = """
import sys
from lockgate.telemetry.metrics import Metrics
from tests.telemetry.test_metrics import worker_records

rounds, stay = int(sys.argv[1]), sys.argv[2] == "stay"
metrics = Metrics(copy_interval_s=0.05)
for _ in range(rounds):
    for record in worker_records():
        metrics.observe(record)
metrics.request_started()  # left in flight
print("ready", flush=True)
if stay:
    sys.stdin.readline()
"""


@pytest.fixture
def shared_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)  # so it is unset again afterwards
    path = prepare_multiprocess_dir(2)
    assert path is not None
    yield path
    remove_multiprocess_dir(path)


def by_series(found: list[Sample]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for s in found}


def start_worker(count: int, *, stay: bool) -> subprocess.Popen[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(count), "stay" if stay else "exit"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_workers_share_their_metrics(shared_dir: str) -> None:
    exiting = start_worker(3, stay=False)  # copies at exit
    staying = start_worker(4, stay=True)  # copies from its thread while it runs
    try:
        assert exiting.wait(timeout=60) == 0
        assert staying.stdout is not None
        assert staying.stdout.readline() == "ready\n"

        metrics = Metrics()  # the process answering the scrape: renders every worker's files
        deadline = time.monotonic() + 30
        while True:
            found = samples(metrics)
            cached = [s for s in found if s.name == "lockgate_cache_hits_total"]
            if cached and cached[0].value == 7:
                break
            assert time.monotonic() < deadline, "the staying worker's numbers never arrived"
            time.sleep(0.05)

        served_ok = {"model": "gpt-4o", "target": "openai/gpt-4o", "status": "200"}
        assert value(found, "lockgate_requests_total", **served_ok) == 7
        assert value(found, "lockgate_rate_limited_total", model="gpt-4o", team="ml") == 7
        assert value(found, "lockgate_tokens_total", model="gpt-4o", type="input") == 70
        assert value(found, "lockgate_tokens_total", model='odd "name" \\', type="input") == 21
        assert value(found, "lockgate_cost_usd_total", team="ml") == pytest.approx(0.007)
        duration = "gen_ai_server_request_duration_seconds"
        ok = {"gen_ai_request_model": "gpt-4o", "gen_ai_provider_name": "openai"}
        assert value(found, f"{duration}_count", **ok) == 7
        assert value(found, f"{duration}_sum", **ok) == pytest.approx(1.4)
        assert value(found, f"{duration}_bucket", le="0.32", **ok) == 7
        ttft = "gen_ai_server_time_to_first_token_seconds"
        assert value(found, f"{ttft}_count", gen_ai_request_model="gpt-4o") == 7
        assert value(found, "lockgate_in_flight") == 2  # one left in flight by each worker

        # what the workers wrote to their files renders as one process with the same traffic
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv(MULTIPROC_ENV)
            alone = Metrics()
        for _ in range(7):
            for one in worker_records():
                alone.observe(one)
        alone.request_started()
        alone.request_started()
        shared_series, alone_series = by_series(found), by_series(samples(alone))
        assert shared_series.keys() - alone_series.keys() == set()
        assert alone_series.keys() - shared_series.keys() == set()
        assert shared_series == pytest.approx(alone_series)

        worker_exited(exiting.pid)  # its live gauge leaves the sum; its counts stay
        found = samples(metrics)
        assert value(found, "lockgate_in_flight") == 1
        assert value(found, "lockgate_requests_total", **served_ok) == 7
    finally:
        if staying.stdin is not None:
            staying.stdin.close()
        staying.wait(timeout=60)
        exiting.wait(timeout=60)


# --- the Grafana dashboard -------------------------------------------------------------------------


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    exprs: list[str] = []
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))  # collapsed rows
        exprs.extend(target["expr"] for target in panel.get("targets", []))
    return exprs


GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
MATCHERS = re.compile(r"\{([^}]*)\}")
METRIC = re.compile(r"\b(?:lockgate|gen_ai)_[a-z0-9_]+")


def test_dashboard_queries_use_exported_metrics_and_labels() -> None:
    metrics = Metrics(health=lambda: {"openai/gpt-4o": {"state": "healthy", "in_flight": 1}})
    usage = {"input_tokens": 10, "output_tokens": 5, "cached_tokens": 2, "cost_micros": 100}
    metrics.observe(served(stream=True, **usage))
    metrics.observe(record(model="gpt-4o", cache_hit=True))
    metrics.observe(record(model="gpt-4o", status=429, error_type="rate_limit_exceeded", team="t"))
    metrics.observe(record(model="gpt-4o", status=429, error_type="budget_exceeded", team="t"))
    metrics.request_started()
    labels_of: dict[str, set[str]] = {}
    for found in samples(metrics):
        labels_of.setdefault(found.name, set()).update(found.labels)

    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_queries(dashboard)
    assert len(exprs) >= 12
    for expr in exprs:
        bare = MATCHERS.sub("", GROUPING.sub("", expr))
        used = set(METRIC.findall(bare))
        assert used, expr
        unknown = used - labels_of.keys()
        assert not unknown, f"{expr!r} uses metrics that are not exported: {unknown}"
        available = set().union(*(labels_of[name] for name in used))
        grouped = {label.strip() for group in GROUPING.findall(expr) for label in group.split(",")}
        matched = {
            matcher.split("=")[0].rstrip("!~").strip()
            for group in MATCHERS.findall(expr)
            for matcher in group.split(",")
            if matcher.strip()
        }
        missing = (grouped | matched) - available - {""}
        assert not missing, f"{expr!r} uses labels the metrics do not have: {missing}"


def test_dashboard_is_importable_anywhere() -> None:
    text = DASHBOARD.read_text()
    dashboard = json.loads(text)
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    uids = set(re.findall(r'"uid":\s*"([^"]*)"', text)) - {dashboard["uid"]}
    assert uids == {"${datasource}"}
