"""`UsageRecord`: what one request did, filled in along the request path and accounted at its end.

The endpoint creates the record when the request arrives; identify, admit, route and call fill in
their parts; when the response has been sent (or has failed) the record goes to the ledger, the
metrics and the access log (`lockgate.usage.accounting`). Times are `time.perf_counter()` values
except `started_at`, the wall-clock start.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lockgate.auth.policy import Principal

if TYPE_CHECKING:
    from lockgate.telemetry.tracing import RequestTrace

__all__ = ["Endpoint", "UsageRecord"]

Endpoint = Literal["chat", "messages", "embeddings", "prompt"]


@dataclass(slots=True)
class UsageRecord:
    request_id: str
    """Unique per request (the ledger's key); see `client_request_id` for the caller's own."""
    endpoint: Endpoint
    client_request_id: str | None = None
    started_at: float = field(default_factory=time.time)
    """Wall-clock start (seconds since the epoch)."""
    started: float = field(default_factory=time.perf_counter)

    key: str | None = None
    """Name of the API key used (None: OIDC, admin or open access)."""
    team: str | None = None
    subject: str | None = None
    """OIDC subject (for GitLab CI, the project path and ref the token names)."""
    model: str | None = None
    """The model the client asked for."""
    provider: str | None = None
    target_model: str | None = None
    prompt: str | None = None
    prompt_version: str | None = None
    stream: bool = False
    tags: Mapping[str, str] | None = None
    """The request's `x-lockgate-tags` (None: none)."""

    status: int = 200
    error_type: str | None = None
    """The error's `code` (e.g. `rate_limit_exceeded`, `upstream_timeout`) when it failed."""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Input tokens the provider served from its prompt cache (part of `input_tokens`)."""
    estimated: bool = False
    """The token counts are the gateway's estimate: the provider reported none."""
    cost_micros: int = 0
    cache_hit: bool = False
    attempts: int = 0

    upstream_s: float | None = None
    """Time spent in upstream attempts until the answer (or a stream's first content) arrived."""
    ready: float | None = None
    """When the answer (or a stream's first content) was ready to send."""
    ended: float | None = None
    trace: RequestTrace | None = None
    request_body: bytes | None = None
    """Kept only with `observability.log_bodies`, for the access log."""
    response_body: bytes | None = None
    """The request's trace when tracing is on."""

    def identify(self, principal: Principal) -> None:
        self.team = principal.team
        if principal.kind == "key":
            self.key = principal.name
        elif principal.kind == "oidc":
            self.subject = principal.name

    def fail(self, status: int, code: str | None) -> None:
        self.status = status
        self.error_type = code or "error"

    def end(self) -> None:
        if self.ended is None:
            self.ended = time.perf_counter()

    @property
    def latency_s(self) -> float:
        """Whole request, to the last byte sent."""
        return (self.ended or time.perf_counter()) - self.started

    @property
    def ttft_s(self) -> float | None:
        """Time to first token: to a stream's first content (None for non-streaming answers)."""
        if not self.stream or self.ready is None or self.status != 200:
            return None
        return self.ready - self.started

    @property
    def overhead_s(self) -> float | None:
        """What the gateway added before the answer was ready: everything but the upstream."""
        if self.ready is None or self.upstream_s is None:
            return None
        overhead = self.ready - self.started - self.upstream_s
        return overhead if overhead > 0.0 else 0.0

    @property
    def cost_usd(self) -> float:
        return self.cost_micros / 1_000_000
