"""Metrics, access log and traces of a real gateway, as an operator's tools would see them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families

from lockgate.simulate.server import RunningSimulator
from tests.access.admin_helpers import USER, base_yaml, lockgate_serve, openai_client
from tests.conftest import config_from_yaml, running_gateway
from tests.telemetry.otlp_receiver import OtlpReceiver, ReceivedSpan

TRACE_ID = "4bf92f3577b34da6a736ce4d1ba6e2b1"
CALLER_SPAN = "00f067aa0ba902b7"


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as answer:
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("text/plain")
        text = await answer.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def access_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for line in capsys.readouterr().err.splitlines()
        if '"lockgate.access"' in line
    ]


async def test_access_lines_are_written_within_a_fraction_of_a_second(
    capsys: pytest.CaptureFixture[str],
) -> None:
    yaml = base_yaml(admin_key=False) + "observability: {log_format: json}\n"
    async with running_gateway(config_from_yaml(yaml)) as url:
        capsys.readouterr()
        async with openai_client(url, "none") as client:
            await client.chat.completions.create(model="m-small", messages=USER)
        await asyncio.sleep(0.3)
        assert len(access_lines(capsys)) == 1


async def test_metrics_count_requests_tokens_cost_and_latency() -> None:
    async with running_gateway(config_from_yaml(base_yaml(admin_key=False))) as url:
        async with openai_client(url, "none") as client:
            replies = [
                await client.chat.completions.create(model="m-small", messages=USER)
                for _ in range(3)
            ]
            with pytest.raises(openai.NotFoundError):
                await client.chat.completions.create(model="nope", messages=USER)
            stream = await client.chat.completions.create(
                model="m-small", messages=USER, stream=True
            )
            async for _ in stream:
                pass
        samples = await scrape(url)
    input_tokens = sum(reply.usage.prompt_tokens for reply in replies if reply.usage)
    assert value(samples, "lockgate_requests_total", model="m-small", status="200") == 4
    assert (
        value(samples, "lockgate_requests_total", status="404", error_type="model_not_found") == 1
    )
    assert value(samples, "lockgate_tokens_total", model="m-small", type="input") > input_tokens
    assert value(samples, "lockgate_cost_usd_total", model="m-small") > 0
    assert (
        value(
            samples,
            "gen_ai_server_request_duration_seconds_count",
            gen_ai_request_model="m-small",
        )
        == 4
    )
    assert value(samples, "gen_ai_server_time_to_first_token_seconds_count") == 1
    assert value(samples, "gen_ai_client_token_usage_count", gen_ai_token_type="output") == 4
    assert value(samples, "lockgate_overhead_seconds_count") >= 4
    assert value(samples, "lockgate_target_healthy", target="sim/sim-small") == 1
    assert value(samples, "lockgate_in_flight") == 0


async def test_metrics_can_be_turned_off() -> None:
    yaml = base_yaml(admin_key=False) + "observability: {metrics: false}\n"
    async with (
        running_gateway(config_from_yaml(yaml)) as url,
        aiohttp.ClientSession() as session,
        session.get(f"{url}/metrics") as answer,
    ):
        assert answer.status == 404


async def test_one_json_access_line_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    yaml = base_yaml(admin_key=False) + "observability: {log_format: json}\n"
    async with running_gateway(config_from_yaml(yaml)) as url:
        capsys.readouterr()
        async with openai_client(url, "none") as client:
            answer = await client.chat.completions.with_raw_response.create(
                model="m-small", messages=USER, extra_headers={"x-request-id": "log-me-1"}
            )
            with pytest.raises(openai.NotFoundError):
                await client.chat.completions.create(model="nope", messages=USER)
    lines = access_lines(capsys)  # written at the latest when the gateway stops
    assert len(lines) == 2
    served, missing = lines
    assert served["client_request_id"] == "log-me-1" == answer.headers["x-request-id"]
    assert served["status"] == 200
    assert served["model"] == "m-small"
    assert (served["provider"], served["target_model"]) == ("sim", "sim-small")
    assert served["input_tokens"] > 0
    assert served["output_tokens"] > 0
    assert served["cost_usd"] > 0
    assert served["latency_ms"] > 0
    assert served["time"].endswith("Z")
    assert (missing["status"], missing["error"]) == (404, "model_not_found")


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    otlp = await OtlpReceiver().start()
    yield otlp
    await otlp.close()


def echoing_yaml(sim: RunningSimulator, observability: str = "") -> str:
    """`m-small` on the session's simulator, which logs the headers it receives."""
    return f"""
providers:
  - name: sim
    type: openai
    base_url: "{sim.base_url}"
    api_key: sim-key
    headers: {{x-sim-echo-headers: "1"}}
models:
  - {{name: m-small, targets: [{{provider: sim, model: sim-small}}]}}
{observability}"""


async def last_upstream_headers(sim: RunningSimulator) -> dict[str, str]:
    root = sim.base_url.removesuffix("/v1")
    async with aiohttp.ClientSession() as session, session.get(f"{root}/sim/echoes") as answer:
        echoes = await answer.json()
    headers: dict[str, str] = echoes[-1]["headers"]
    return headers


async def until_spans(receiver: OtlpReceiver, count: int) -> list[ReceivedSpan]:
    for _ in range(200):
        if len(receiver.spans) >= count:
            return receiver.spans
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} spans, got {receiver.spans}")


async def test_a_traced_request_joins_the_callers_trace_and_carries_it_upstream(
    receiver: OtlpReceiver, simulator: RunningSimulator
) -> None:
    yaml = echoing_yaml(
        simulator, f'observability: {{otlp_endpoint: "{receiver.url}", service_name: lg-test}}\n'
    )
    async with running_gateway(config_from_yaml(yaml)) as url:
        async with openai_client(url, "none") as client:
            reply: Any = await client.chat.completions.create(
                model="m-small",
                messages=USER,
                extra_headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
            )
        sent = await last_upstream_headers(simulator)
        # The gateway's shutdown flushes the exporter.
    spans = await until_spans(receiver, 2)
    server = next(span for span in spans if span.span.kind == Span.SPAN_KIND_SERVER)
    client_span = next(span for span in spans if span.span.kind == Span.SPAN_KIND_CLIENT)
    assert server.trace_id == TRACE_ID
    assert server.parent_span_id == CALLER_SPAN
    assert server.name == "chat m-small"
    assert server.attributes["gen_ai.request.model"] == "m-small"
    assert server.attributes["gen_ai.response.model"] == "sim-small"
    assert server.attributes["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert server.attributes["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert client_span.parent_span_id == server.span_id
    # What the simulator received: the attempt span's context.
    assert sent["traceparent"] == f"00-{TRACE_ID}-{client_span.span_id}-01"


async def test_without_an_endpoint_nothing_is_traced_or_propagated(
    simulator: RunningSimulator,
) -> None:
    async with running_gateway(config_from_yaml(echoing_yaml(simulator))) as url:
        async with openai_client(url, "none") as client:
            await client.chat.completions.create(
                model="m-small",
                messages=USER,
                extra_headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
            )
        sent = await last_upstream_headers(simulator)
    assert "traceparent" not in sent


async def test_logged_bodies_have_secrets_and_personal_data_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    yaml = base_yaml(admin_key=False) + "observability: {log_format: json, log_bodies: true}\n"
    ticket = (
        "Customer jane.doe@example.com paid with 4111 1111 1111 1111 (order 1234567890123) "
        "and pasted AKIAIOSFODNN7EXAMPLE from 10.1.2.3"
    )
    async with running_gateway(config_from_yaml(yaml)) as url:
        capsys.readouterr()
        async with openai_client(url, "none") as client:
            await client.chat.completions.create(
                model="m-small", messages=[{"role": "user", "content": ticket}]
            )
    (line,) = access_lines(capsys)
    logged = line["request_body"]
    for leaked in (
        "jane.doe@example.com",
        "4111 1111 1111 1111",
        "AKIAIOSFODNN7EXAMPLE",
        "10.1.2.3",
    ):
        assert leaked not in logged
    for kind in ("email", "credit_card", "aws_access_key", "ip_address"):
        assert f"[REDACTED:{kind}]" in logged
    assert "order 1234567890123" in logged  # not a card: fails the Luhn check
    assert '"chat.completion"' in line["response_body"]


async def test_bodies_are_not_logged_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    yaml = base_yaml(admin_key=False) + "observability: {log_format: json}\n"
    async with running_gateway(config_from_yaml(yaml)) as url:
        capsys.readouterr()
        async with openai_client(url, "none") as client:
            await client.chat.completions.create(model="m-small", messages=USER)
    (line,) = access_lines(capsys)
    assert "request_body" not in line
    assert "response_body" not in line


async def test_several_workers_report_their_sum(tmp_path: Path) -> None:
    """`lockgate serve --workers 2`: whichever worker answers /metrics counts every worker's."""
    config = tmp_path / "lockgate.yaml"
    config.write_text(base_yaml(admin_key=False, database=f"sqlite:///{tmp_path / 'x.db'}"))
    with lockgate_serve(config, "--workers", "2", log=tmp_path / "serve.log", workers=2) as (
        url,
        _,
    ):
        async with aiohttp.ClientSession() as session:
            for _ in range(40):  # new connections: the kernel spreads them over the workers
                async with session.post(
                    f"{url}/v1/chat/completions",
                    json={"model": "m-small", "messages": USER},
                    headers={"connection": "close"},
                ) as answer:
                    assert answer.status == 200
        await asyncio.sleep(1.5)  # each worker shares its numbers at least once a second
        in_flight = set()
        for _ in range(20):  # answered by one worker or the other: each sees all 40
            samples = await scrape(url)
            in_flight.add(value(samples, "lockgate_in_flight"))
            assert value(samples, "lockgate_requests_total", model="m-small") == 40
    assert in_flight == {0}
