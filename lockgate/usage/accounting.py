"""Accounting (DESIGN §2, step 9): a finished request's record to the ledger, metrics and log.

Endpoints wrap a request in `accounting.track(request, endpoint)`: it notes how the request ended
(the error's status and code, a client that went away) and hands the record on when it is over.
Everything here runs on the hot path, so it only appends and counts; the ledger writes later.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import TYPE_CHECKING

from lockgate.api.http import ClientGone, DisconnectWatch, Request, new_request_id
from lockgate.errors import GatewayError
from lockgate.usage.ledger import Ledger
from lockgate.usage.record import Endpoint, UsageRecord

if TYPE_CHECKING:
    from lockgate.telemetry.access_log import AccessLog
    from lockgate.telemetry.metrics import Metrics
    from lockgate.telemetry.tracing import Tracing

__all__ = ["Accounting", "Tracked", "client_left"]

log = logging.getLogger("lockgate.usage")

CLIENT_CLOSED = 499
"""Status recorded for a client that went away before its answer was complete (as nginx does)."""


class Accounting:
    __slots__ = ("_access_log", "_ledger", "_metrics", "_tracing")

    def __init__(
        self,
        ledger: Ledger | None,
        metrics: Metrics | None,
        access_log: AccessLog | None,
        tracing: Tracing | None = None,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._access_log = access_log
        self._tracing = tracing

    def track(self, request: Request, endpoint: Endpoint, *, part: bool = False) -> Tracked:
        """`with accounting.track(request, "chat") as record:` around one request's handling.

        `part`: one of several model calls one request makes (a review's chunks), each a row
        of its own under a fresh id.
        """
        client_id = request.client_request_id
        record = UsageRecord(
            new_request_id() if part else request.unique_id(),
            endpoint,
            None if client_id is None else client_id.decode(),
        )
        if self._tracing is not None:
            record.trace = self._tracing.start_request(
                OPERATIONS[endpoint],
                None,
                request.header(b"traceparent"),
                request.header(b"tracestate"),
            )
        if self._metrics is not None:
            self._metrics.request_started()
        return Tracked(self, record)

    def finish(self, record: UsageRecord) -> None:
        record.end()
        try:
            if self._ledger is not None:
                self._ledger.add(record)
            if self._metrics is not None:
                self._metrics.request_finished()
                self._metrics.observe(record)
            if self._access_log is not None:
                self._access_log.write(record)
            if record.trace is not None:
                record.trace.finish(record)
        except Exception:  # accounting must never turn an answered request into a failure
            log.exception("accounting for request %s failed", record.request_id)

    def close(self) -> None:
        """Write what is buffered (the access log's last lines)."""
        if self._access_log is not None:
            self._access_log.flush()


OPERATIONS: dict[Endpoint, str] = {
    "chat": "chat",
    "messages": "chat",
    "prompt": "chat",
    "embeddings": "embeddings",
}
"""The OpenTelemetry GenAI operation name of each endpoint."""


class Tracked:
    """Notes how the request ended (an error's status and code, a client that went away)."""

    __slots__ = ("_accounting", "record")

    def __init__(self, accounting: Accounting, record: UsageRecord) -> None:
        self._accounting = accounting
        self.record = record

    def __enter__(self) -> UsageRecord:
        return self.record

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        record = self.record
        if exc is not None:
            if isinstance(exc, GatewayError):
                record.fail(exc.status, exc.code)
            elif isinstance(exc, (ClientGone, asyncio.CancelledError)):
                record.fail(CLIENT_CLOSED, "client_disconnected")
            else:
                record.fail(500, "internal_error")
        self._accounting.finish(record)


def client_left(watch: DisconnectWatch, record: UsageRecord) -> None:
    """Note a client that hung up (its request was cancelled, and the watch swallowed that)."""
    if watch.disconnected:
        record.fail(CLIENT_CLOSED, "client_disconnected")
