"""OpenTelemetry traces: one SERVER span per request, its stages, and one CLIENT span per attempt.

Tracing is off unless `observability.otlp_endpoint` is set. Off, `build_tracing` returns None and
nothing here imports OpenTelemetry, so the request path pays one `is None` test. On, the gateway
has its own `TracerProvider` (the global one is left alone), sampled by
`ParentBased(TraceIdRatioBased(trace_sample_ratio))` and exported over OTLP/HTTP (protobuf) by a
`BatchSpanProcessor`, whose thread does the sending: the event loop only queues ended spans.

An incoming W3C `traceparent` (and `tracestate`) makes the request span its child and decides its
sampling; each upstream attempt sends its own `traceparent`, naming its CLIENT span, even when the
request is not sampled (sampled flag clear), so the trace stays whole across services.

Attribute names follow the OpenTelemetry GenAI semantic conventions (`gen_ai.*`, development
status), the stable `error.type` and `http.response.status_code`, plus the gateway's `lockgate.*`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from lockgate.config.models import ObservabilityConfig
    from lockgate.usage.record import UsageRecord

__all__ = ["AttemptTrace", "RequestTrace", "Tracing", "build_tracing"]

TRACES_PATH = "/v1/traces"
FLUSH_TIMEOUT_MS = 5_000
"""At shutdown, how long the last spans may take to reach the collector."""


def build_tracing(config: ObservabilityConfig) -> Tracing | None:
    """The tracer of a gateway with `otlp_endpoint` set; None (tracing off) without one."""
    if config.otlp_endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(config.trace_sample_ratio)),
        resource=Resource.create({"service.name": config.service_name}),
    )
    exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint.rstrip("/") + TRACES_PATH)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)


class Tracing:
    """Starts request traces; one per gateway, built by `build_tracing`."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        from lockgate import __version__

        self._provider = provider
        self._tracer: Tracer = provider.get_tracer("lockgate", __version__)
        self._propagator: TraceContextTextMapPropagator = TraceContextTextMapPropagator()
        self._closed = False

    def start_request(
        self,
        operation: str,
        model: str | None,
        traceparent: bytes | None,
        tracestate: bytes | None,
    ) -> RequestTrace:
        """Start the SERVER span of a request, a child of the caller's trace when it sent one.

        `operation` is the GenAI operation name (`chat`, `embeddings`); `traceparent` and
        `tracestate` are the raw header values (None when absent; an invalid one is ignored).
        """
        from opentelemetry.trace import SpanKind, set_span_in_context

        carrier: dict[str, str] = {}
        if traceparent:
            carrier["traceparent"] = traceparent.decode("latin-1")
            if tracestate:
                carrier["tracestate"] = tracestate.decode("latin-1")
        parent = self._propagator.extract(carrier)
        attributes = {"gen_ai.operation.name": operation}
        if model is not None:
            attributes["gen_ai.request.model"] = model
        anchor_ns, anchor = time.time_ns(), time.perf_counter()
        span = self._tracer.start_span(
            _span_name(operation, model),
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=anchor_ns,
        )
        return RequestTrace(
            self._tracer,
            self._propagator,
            span,
            set_span_in_context(span),
            operation,
            anchor_ns,
            anchor,
        )

    def shutdown(self) -> None:
        """Export the spans still queued, then stop the exporter thread (blocking; idempotent).

        Waits up to `FLUSH_TIMEOUT_MS` for the collector: from async code, run it in a thread.
        """
        if self._closed:
            return
        self._closed = True
        self._provider.force_flush(FLUSH_TIMEOUT_MS)
        self._provider.shutdown()


class RequestTrace:
    """One request's SERVER span and its children; made by `Tracing.start_request`.

    A request the sampler dropped still has a span context (a trace id, a span id, the sampled flag
    clear) to propagate; everything else is skipped.
    """

    __slots__ = (
        "_anchor",
        "_anchor_ns",
        "_context",
        "_finished",
        "_operation",
        "_propagator",
        "_recording",
        "_span",
        "_tracer",
    )

    def __init__(
        self,
        tracer: Tracer,
        propagator: TraceContextTextMapPropagator,
        span: Span,
        context: Context,
        operation: str,
        anchor_ns: int,
        anchor: float,
    ) -> None:
        self._tracer = tracer
        self._propagator = propagator
        self._span = span
        self._context = context
        self._operation = operation
        self._anchor_ns = anchor_ns
        self._anchor = anchor
        self._recording = span.is_recording()
        self._finished = False

    @property
    def trace_id(self) -> str:
        """The W3C trace id (32 hex digits), e.g. for the access log."""
        return f"{self._span.get_span_context().trace_id:032x}"

    @property
    def sampled(self) -> bool:
        """Whether this request's spans are recorded and exported."""
        return self._recording

    def stage(self, name: str, start: float, end: float) -> None:
        """Record a stage (`admit`, `guard`, `cache`…) that ran from `start` to `end`.

        Both are `time.perf_counter()` values; the stage becomes an INTERNAL child span.
        """
        if not self._recording:
            return
        span = self._tracer.start_span(name, context=self._context, start_time=self._wall(start))
        span.end(end_time=self._wall(end))

    def attempt(self, provider: str, model: str) -> AttemptTrace:
        """Start the CLIENT span of one upstream call (`{operation} {model}`), now."""
        from opentelemetry.trace import SpanKind, set_span_in_context

        attributes: dict[str, str] | None = None
        if self._recording:
            attributes = {
                "gen_ai.operation.name": self._operation,
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
            }
        span = self._tracer.start_span(
            _span_name(self._operation, model),
            context=self._context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        headers: dict[str, str] = {}  # nothing for an invalid context (OTEL_SDK_DISABLED=true)
        self._propagator.inject(headers, context=set_span_in_context(span))
        return AttemptTrace(span, headers)

    def finish(self, record: UsageRecord) -> None:
        """Describe the request from its usage record and end the span when the record ended."""
        if self._finished:
            return
        self._finished = True
        span = self._span
        if not self._recording:
            span.end()
            return
        if record.model is not None:
            span.update_name(_span_name(self._operation, record.model))
        span.set_attributes(_request_attributes(record))
        if record.status >= 400:
            _fail(span, record.error_type or str(record.status))
        ended = record.ended if record.ended is not None else time.perf_counter()
        span.end(end_time=self._wall(ended))

    def _wall(self, counter: float) -> int:
        """A `perf_counter()` value as nanoseconds since the epoch."""
        return self._anchor_ns + int((counter - self._anchor) * 1e9)


class AttemptTrace:
    """One upstream call's CLIENT span; `headers` go on the upstream request."""

    __slots__ = ("_ended", "_span", "headers")

    def __init__(self, span: Span, headers: dict[str, str]) -> None:
        self._span = span
        self._ended = False
        self.headers = headers

    def end(self, status: int | None = None, error: str | None = None) -> None:
        """End the call: `status` is the upstream's HTTP status (None: no answer, e.g. a timeout);
        `error` the gateway's error code when the attempt failed."""
        if self._ended:
            return
        self._ended = True
        span = self._span
        if span.is_recording():
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is not None or (status is not None and status >= 400):
                _fail(span, error or str(status))
        span.end()


def _request_attributes(record: UsageRecord) -> dict[str, str | bool | int | float]:
    """The request span's attributes: GenAI semantic conventions, then the gateway's own."""
    attributes: dict[str, str | bool | int | float] = {
        "gen_ai.request.stream": record.stream,
        "gen_ai.usage.input_tokens": record.input_tokens,
    }
    if record.endpoint != "embeddings":  # embeddings produce no output tokens
        attributes["gen_ai.usage.output_tokens"] = record.output_tokens
    if record.cached_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = record.cached_tokens
    for name, value in (
        ("gen_ai.request.model", record.model),
        ("gen_ai.response.model", record.target_model),
        ("gen_ai.provider.name", record.provider),
        ("gen_ai.prompt.name", record.prompt),
        ("gen_ai.prompt.version", record.prompt_version),
        ("lockgate.team", record.team),
        ("lockgate.key", record.key),
        ("lockgate.subject", record.subject),
    ):
        if value is not None:
            attributes[name] = value
    attributes.update(
        {
            "http.response.status_code": record.status,
            "lockgate.request_id": record.request_id,
            "lockgate.endpoint": record.endpoint,
            "lockgate.cost_usd": record.cost_usd,
            "lockgate.cache_hit": record.cache_hit,
            "lockgate.attempts": record.attempts,
            "lockgate.estimated": record.estimated,
        }
    )
    for tag, value in (record.tags or {}).items():
        attributes[f"lockgate.tag.{tag}"] = value
    return attributes


def _span_name(operation: str, model: str | None) -> str:
    return f"{operation} {model}" if model else operation


def _fail(span: Span, error_type: str) -> None:
    from opentelemetry.trace import StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(StatusCode.ERROR, error_type)
