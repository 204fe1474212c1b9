"""The access log: one line per request, JSON or text, written to stderr in batches.

It bypasses `logging` on purpose: a line per request through a logger, a record and a formatter
costs several times what building the line does, on the hot path; and lines are written about ten
times a second rather than one write per line (a system call per request). Other log lines still
go through `logging` (see `logging.py`) in the same format.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from typing import Any, TextIO

import orjson

from lockgate.telemetry.redaction import BodyRedactor
from lockgate.usage.record import UsageRecord

__all__ = ["FLUSH_EVERY_S", "AccessLog", "access_fields"]

FLUSH_EVERY_S = 0.1
"""Longest a line waits before it is written (lost only if the process is killed meanwhile)."""


class AccessLog:
    """Writes the access line of each finished request."""

    __slots__ = ("_flush_soon", "_json", "_pending", "_redact", "_stream")

    def __init__(
        self,
        log_format: str,
        redact_bodies: BodyRedactor | None = None,
        stream: TextIO | None = None,
    ) -> None:
        """`redact_bodies`: log request and response bodies, redacted by it (None: no bodies)."""
        self._json = log_format == "json"
        self._redact = redact_bodies
        self._stream = stream
        self._pending: list[str] = []
        self._flush_soon: asyncio.TimerHandle | None = None

    def write(self, record: UsageRecord) -> None:
        if self._json or self._redact is not None:
            fields = access_fields(record)
            if self._redact is not None:
                if record.request_body is not None:
                    fields["request_body"] = self._redact(record.request_body)
                if record.response_body is not None:
                    fields["response_body"] = self._redact(record.response_body)
            line = orjson.dumps(fields).decode() if self._json else _text_from_fields(fields)
        else:
            line = _text_line(record)
        self._pending.append(line)
        if self._flush_soon is None:
            self._flush_soon = asyncio.get_running_loop().call_later(FLUSH_EVERY_S, self.flush)

    def flush(self) -> None:
        """Write the lines waiting (at shutdown too)."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        if self._pending:
            stream = self._stream or sys.stderr
            stream.write("\n".join(self._pending) + "\n")
            stream.flush()
            self._pending.clear()


def access_fields(record: UsageRecord) -> dict[str, Any]:
    ttft = record.ttft_s
    overhead = record.overhead_s
    fields: dict[str, Any] = {
        "time": _timestamp(record.started_at),
        "level": "info",
        "logger": "lockgate.access",
        "request_id": record.request_id,
        "endpoint": record.endpoint,
        "status": record.status,
        "model": record.model,
        "provider": record.provider,
        "target_model": record.target_model,
        "stream": record.stream,
        "latency_ms": round(record.latency_s * 1000, 3),
        "ttft_ms": None if ttft is None else round(ttft * 1000, 3),
        "overhead_ms": None if overhead is None else round(overhead * 1000, 3),
        "attempts": record.attempts,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cached_tokens": record.cached_tokens,
        "estimated": record.estimated,
        "cost_usd": record.cost_micros / 1_000_000,
        "cache_hit": record.cache_hit,
        "key": record.key,
        "team": record.team,
        "subject": record.subject,
    }
    if record.client_request_id is not None:
        fields["client_request_id"] = record.client_request_id
    if record.error_type is not None:
        fields["error"] = record.error_type
    if record.prompt is not None:
        fields["prompt"] = record.prompt
        fields["prompt_version"] = record.prompt_version
    if record.tags:
        fields["tags"] = dict(record.tags)
    return fields


@functools.lru_cache(maxsize=4)
def _utc_second(whole: int) -> str:
    """Most lines share their second with the line before: formatted once."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def _timestamp(epoch_s: float) -> str:
    whole = int(epoch_s)
    return f"{_utc_second(whole)}.{int((epoch_s - whole) * 1000):03d}Z"


_TEXT_FIELDS = (
    "client_request_id",
    "model",
    "cache",
    "provider",
    "target_model",
    "error",
    "attempts",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "key",
    "team",
    "subject",
    "prompt",
    "request_id",
    "request_body",
    "response_body",
)


def _text_from_fields(fields: dict[str, Any]) -> str:
    """`<time> INFO    lockgate.access: chat 200 12.3ms model=...`; empty fields left out."""
    parts = [
        f"{fields['time']} INFO    lockgate.access: {fields['endpoint']} {fields['status']}",
        f"{fields['latency_ms']:.1f}ms",
    ]
    named = {**fields, "cache": "hit" if fields["cache_hit"] else None}
    parts += [f"{name}={named[name]}" for name in _TEXT_FIELDS if named.get(name) is not None]
    return " ".join(parts)


def _text_line(record: UsageRecord) -> str:
    """`_text_from_fields(access_fields(record))` without the dict, for the common case.

    Spelled out field by field: this runs for every request, and a loop over (name, value)
    pairs with a generator costs a third more."""
    line = (
        f"{_timestamp(record.started_at)} INFO    lockgate.access: {record.endpoint} "
        f"{record.status} {round(record.latency_s * 1000, 3):.1f}ms"
    )
    if record.client_request_id is not None:
        line += f" client_request_id={record.client_request_id}"
    if record.model is not None:
        line += f" model={record.model}"
    if record.cache_hit:
        line += " cache=hit"
    if record.provider is not None:
        line += f" provider={record.provider}"
    if record.target_model is not None:
        line += f" target_model={record.target_model}"
    if record.error_type is not None:
        line += f" error={record.error_type}"
    line += (
        f" attempts={record.attempts} input_tokens={record.input_tokens}"
        f" output_tokens={record.output_tokens} cost_usd={record.cost_micros / 1_000_000}"
    )
    if record.key is not None:
        line += f" key={record.key}"
    if record.team is not None:
        line += f" team={record.team}"
    if record.subject is not None:
        line += f" subject={record.subject}"
    if record.prompt is not None:
        line += f" prompt={record.prompt}"
    return f"{line} request_id={record.request_id}"
