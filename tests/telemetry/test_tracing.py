"""Tracing: spans exported over real OTLP/HTTP to a loopback receiver, W3C context in and out."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from lockgate.config.models import ObservabilityConfig
from lockgate.telemetry.tracing import Tracing, build_tracing
from lockgate.usage.record import UsageRecord
from tests.telemetry.otlp_receiver import OtlpReceiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
SAMPLED = 0x01  # W3C trace-flags bit; 0x02 ("random trace id", Level 2) may be set too
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    running = await OtlpReceiver().start()
    yield running
    await running.close()


def tracing_to(receiver: OtlpReceiver, ratio: float = 1.0) -> Tracing:
    config = ObservabilityConfig(
        otlp_endpoint=receiver.url + "/", trace_sample_ratio=ratio, service_name="lockgate-test"
    )
    tracing = build_tracing(config)
    assert tracing is not None
    return tracing


async def shut(tracing: Tracing) -> None:
    """Flush to the receiver, which answers on this event loop: shutdown blocks, so in a thread."""
    await asyncio.to_thread(tracing.shutdown)


def wall_ns(record: UsageRecord, counter: float) -> int:
    return int((record.started_at + (counter - record.started)) * 1e9)


def served(record: UsageRecord) -> UsageRecord:
    """A chat request answered by openai after one attempt."""
    record.key, record.team, record.provider = "ci-key", "platform", "openai"
    record.target_model = "gpt-4o-mini-2024-07-18"
    record.input_tokens, record.output_tokens, record.cached_tokens = 120, 45, 64
    record.cost_micros, record.attempts = 2_500, 1
    record.tags = {"project": "lockgate"}
    record.end()
    return record


async def test_request_joins_incoming_trace_and_propagates_its_client_span(
    receiver: OtlpReceiver,
) -> None:
    tracing = tracing_to(receiver)
    record = UsageRecord(request_id="req-1", endpoint="chat", model="gpt-4o-mini")
    trace = tracing.start_request(
        "chat", "gpt-4o-mini", f"00-{TRACE_ID}-{PARENT_ID}-01".encode(), b"vendor=abc"
    )
    attempt = trace.attempt("openai", "gpt-4o-mini-2024-07-18")
    headers = dict(attempt.headers)
    attempt.end(200)
    trace.finish(served(record))
    await shut(tracing)

    server = receiver.one(Span.SPAN_KIND_SERVER)
    assert (server.name, server.trace_id, server.parent_span_id) == (
        "chat gpt-4o-mini",
        TRACE_ID,
        PARENT_ID,
    )
    assert server.span.trace_state == "vendor=abc"
    assert server.resource["service.name"] == "lockgate-test"
    assert server.scope == "lockgate"

    client = receiver.one(Span.SPAN_KIND_CLIENT)
    assert client.name == "chat gpt-4o-mini-2024-07-18"
    assert (client.trace_id, client.parent_span_id) == (TRACE_ID, server.span_id)
    assert headers == {
        "traceparent": f"00-{TRACE_ID}-{client.span_id}-01",
        "tracestate": "vendor=abc",
    }
    assert client.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini-2024-07-18",
        "http.response.status_code": 200,
    }
    assert client.span.status.code == Status.STATUS_CODE_UNSET


async def test_stages_nest_under_the_request_span_with_their_times(
    receiver: OtlpReceiver,
) -> None:
    tracing = tracing_to(receiver)
    record = UsageRecord(request_id="req-2", endpoint="chat", model="gpt-4o-mini")
    trace = tracing.start_request("chat", "gpt-4o-mini", None, None)
    start = record.started
    trace.stage("admit", start + 0.001, start + 0.003)
    trace.stage("guard", start + 0.003, start + 0.0045)
    trace.stage("cache", start + 0.0045, start + 0.005)
    trace.finish(served(record))
    await shut(tracing)

    server = receiver.one(Span.SPAN_KIND_SERVER)
    assert server.parent_span_id == ""  # no incoming traceparent: a new trace
    assert record.ended is not None
    assert server.span.end_time_unix_nano == pytest.approx(
        wall_ns(record, record.ended), abs=1_000_000
    )
    for name, offset, duration in [
        ("admit", 0.001, 0.002),
        ("guard", 0.003, 0.0015),
        ("cache", 0.0045, 0.0005),
    ]:
        (stage,) = receiver.named(name)
        assert stage.span.kind == Span.SPAN_KIND_INTERNAL
        assert (stage.trace_id, stage.parent_span_id) == (server.trace_id, server.span_id)
        assert stage.span.start_time_unix_nano == pytest.approx(
            wall_ns(record, start + offset), abs=1_000_000
        )
        elapsed = stage.span.end_time_unix_nano - stage.span.start_time_unix_nano
        assert elapsed == pytest.approx(duration * 1e9, abs=1_000)
        assert stage.span.start_time_unix_nano >= server.span.start_time_unix_nano - 1_000_000


async def test_request_span_carries_genai_and_gateway_attributes(
    receiver: OtlpReceiver,
) -> None:
    tracing = tracing_to(receiver)
    record = UsageRecord(request_id="req-3", endpoint="chat", model="gpt-4o-mini", stream=True)
    trace = tracing.start_request("chat", None, None, None)  # the model is known only later
    trace.finish(served(record))
    await shut(tracing)

    server = receiver.one(Span.SPAN_KIND_SERVER)
    assert server.name == "chat gpt-4o-mini"
    assert server.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.stream": True,
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 45,
        "gen_ai.usage.cache_read.input_tokens": 64,
        "http.response.status_code": 200,
        "lockgate.request_id": "req-3",
        "lockgate.endpoint": "chat",
        "lockgate.team": "platform",
        "lockgate.key": "ci-key",
        "lockgate.cost_usd": 0.0025,
        "lockgate.cache_hit": False,
        "lockgate.attempts": 1,
        "lockgate.estimated": False,
        "lockgate.tag.project": "lockgate",
    }
    assert server.span.status.code == Status.STATUS_CODE_UNSET


async def test_failed_request_and_attempt_have_error_status(receiver: OtlpReceiver) -> None:
    tracing = tracing_to(receiver)
    record = UsageRecord(request_id="req-4", endpoint="embeddings", model="embed-small")
    trace = tracing.start_request("embeddings", "embed-small", None, None)
    first = trace.attempt("openai", "text-embedding-3-small")
    first.end(503)
    second = trace.attempt("azure", "text-embedding-3-small")
    second.end(None, "upstream_timeout")
    record.attempts = 2
    record.fail(504, "upstream_timeout")
    record.end()
    trace.finish(record)
    await shut(tracing)

    server = receiver.one(Span.SPAN_KIND_SERVER)
    assert server.span.status.code == Status.STATUS_CODE_ERROR
    assert server.span.status.message == "upstream_timeout"
    assert server.attributes["error.type"] == "upstream_timeout"
    assert server.attributes["http.response.status_code"] == 504
    assert server.attributes["gen_ai.usage.input_tokens"] == 0
    assert "gen_ai.usage.output_tokens" not in server.attributes  # embeddings have none
    clients = sorted(
        (span for span in receiver.spans if span.span.kind == Span.SPAN_KIND_CLIENT),
        key=lambda span: span.span.start_time_unix_nano,
    )
    assert [span.attributes["gen_ai.provider.name"] for span in clients] == ["openai", "azure"]
    assert [span.attributes["error.type"] for span in clients] == ["503", "upstream_timeout"]
    assert all(span.span.status.code == Status.STATUS_CODE_ERROR for span in clients)
    assert "http.response.status_code" not in clients[1].attributes


async def test_sample_ratio_zero_exports_nothing_but_still_propagates(
    receiver: OtlpReceiver,
) -> None:
    tracing = tracing_to(receiver, ratio=0)
    record = UsageRecord(request_id="req-5", endpoint="chat", model="gpt-4o-mini")
    trace = tracing.start_request("chat", "gpt-4o-mini", None, None)
    assert not trace.sampled
    trace.stage("admit", record.started, record.started + 0.001)
    attempt = trace.attempt("openai", "gpt-4o-mini")
    attempt.end(200)
    trace.finish(served(record))
    await shut(tracing)

    assert receiver.requests == 0
    assert receiver.spans == []
    match = TRACEPARENT.fullmatch(attempt.headers["traceparent"])
    assert match is not None
    trace_id, span_id, flags = match.groups()
    assert trace_id == trace.trace_id
    assert int(flags, 16) & SAMPLED == 0
    assert trace_id != "0" * 32
    assert span_id != "0" * 16
    assert "tracestate" not in attempt.headers


async def test_the_callers_sampling_decision_wins(receiver: OtlpReceiver) -> None:
    # Ratio 0, but the caller sampled: traced. Ratio 1, but the caller did not: not traced.
    sampled_in = tracing_to(receiver, ratio=0)
    trace = sampled_in.start_request("chat", "m", f"00-{TRACE_ID}-{PARENT_ID}-01".encode(), None)
    attempt = trace.attempt("openai", "m")
    attempt.end(200)
    trace.finish(served(UsageRecord(request_id="in", endpoint="chat", model="m")))
    await shut(sampled_in)
    assert {span.trace_id for span in receiver.spans} == {TRACE_ID}
    assert len(receiver.spans) == 2

    other = "0af7651916cd43dd8448eb211c80319c"
    sampled_out = tracing_to(receiver, ratio=1)
    trace = sampled_out.start_request("chat", "m", f"00-{other}-{PARENT_ID}-00".encode(), None)
    attempt = trace.attempt("openai", "m")
    attempt.end(200)
    trace.finish(served(UsageRecord(request_id="out", endpoint="chat", model="m")))
    await shut(sampled_out)
    assert len(receiver.spans) == 2
    match = TRACEPARENT.fullmatch(attempt.headers["traceparent"])
    assert match is not None
    assert (match[1], match[3]) == (other, "00")  # the caller's flags, kept
    assert match[2] != PARENT_ID  # the attempt's own span id, not the caller's


@pytest.mark.parametrize(
    "traceparent",
    [
        b"garbage",
        b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
    ],
)
async def test_invalid_traceparent_starts_a_new_trace(
    receiver: OtlpReceiver, traceparent: bytes
) -> None:
    tracing = tracing_to(receiver)
    trace = tracing.start_request("chat", "m", traceparent, b"vendor=abc")
    trace.finish(served(UsageRecord(request_id="new", endpoint="chat", model="m")))
    await shut(tracing)
    server = receiver.one(Span.SPAN_KIND_SERVER)
    assert server.parent_span_id == ""
    assert server.trace_id not in (TRACE_ID, "0" * 32)
    assert server.span.trace_state == ""


async def test_finish_and_end_are_idempotent_and_shutdown_too(receiver: OtlpReceiver) -> None:
    tracing = tracing_to(receiver)
    record = served(UsageRecord(request_id="twice", endpoint="chat", model="m"))
    trace = tracing.start_request("chat", "m", None, None)
    attempt = trace.attempt("openai", "m")
    attempt.end(200)
    attempt.end(500)
    trace.finish(record)
    trace.finish(record)
    await shut(tracing)
    await shut(tracing)
    assert len(receiver.spans) == 2
    assert receiver.one(Span.SPAN_KIND_CLIENT).attributes["http.response.status_code"] == 200


def test_off_by_default_and_opentelemetry_not_imported() -> None:
    assert build_tracing(ObservabilityConfig()) is None
    code = (
        "import sys\n"
        "from lockgate.config.models import ObservabilityConfig\n"
        "from lockgate.telemetry import tracing\n"
        "assert tracing.build_tracing(ObservabilityConfig()) is None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'opentelemetry'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
