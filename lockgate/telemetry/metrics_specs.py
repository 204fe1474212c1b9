"""The metric families the gateway exports: their names, help, labels and buckets.

Names follow the OpenTelemetry GenAI semantic conventions where they define one
(`gen_ai.server.request.duration` is `gen_ai_server_request_duration_seconds`, attribute
`gen_ai.request.model` the label `gen_ai_request_model`); the rest are `lockgate_*`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BUDGET_REJECTED",
    "CACHE_HITS",
    "COST",
    "GENAI_OPERATIONS",
    "GENAI_PROVIDERS",
    "IN_FLIGHT",
    "OVERHEAD",
    "RATE_LIMITED",
    "REQUESTS",
    "REQUEST_DURATION",
    "SPECS",
    "TARGET_HEALTHY",
    "TARGET_IN_FLIGHT",
    "TIME_TO_FIRST_TOKEN",
    "TOKENS",
    "TOKEN_USAGE",
    "UPSTREAM_DURATION",
    "Spec",
]

# Bucket boundaries: the semantic conventions' own, where they give some. Request durations add
# three below 10 ms, so cache hits and rejections do not all fall in the first bucket.
# fmt: off
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005,
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
TTFT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
# Token counts are ints: bounds of the same type are cheaper to search.
TOKEN_BUCKETS: tuple[float, ...] = tuple(4**power for power in range(14))  # 1 … 67108864
OVERHEAD_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)
# fmt: on

GENAI_OPERATIONS: Mapping[str, str] = {
    "chat": "chat",
    "messages": "chat",
    "prompt": "chat",
    "embeddings": "embeddings",
}
GENAI_PROVIDERS: Mapping[str, str] = {
    "azure": "azure.ai.openai",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}
"""Provider types whose `gen_ai.provider.name` differs from the type (the rest keep it)."""


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    """The family name; a counter's samples add `_total`."""
    help: str
    kind: Literal["counter", "histogram"]
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


_GENAI = (
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
)

REQUEST_DURATION = Spec(
    "gen_ai_server_request_duration_seconds",
    "Whole request as the gateway served it, to the last byte sent.",
    "histogram",
    (*_GENAI, "error_type"),
    DURATION_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Spec(
    "gen_ai_server_time_to_first_token_seconds",
    "Time to a successful stream's first content.",
    "histogram",
    _GENAI,
    TTFT_BUCKETS,
)
TOKEN_USAGE = Spec(
    "gen_ai_client_token_usage",
    "Input and output tokens per request (billable counts; the gateway's estimate when the "
    "provider reported none).",
    "histogram",
    (*_GENAI, "gen_ai_token_type"),
    TOKEN_BUCKETS,
)
REQUESTS = Spec(
    "lockgate_requests",
    "Finished requests.",
    "counter",
    ("endpoint", "model", "target", "status", "error_type"),
)
UPSTREAM_DURATION = Spec(
    "lockgate_upstream_duration_seconds",
    "Time in upstream attempts until the answer (or a stream's first content) arrived.",
    "histogram",
    ("target",),
    DURATION_BUCKETS,
)
OVERHEAD = Spec(
    "lockgate_overhead_seconds",
    "What the gateway added before the answer was ready: everything but the upstream.",
    "histogram",
    ("endpoint",),
    OVERHEAD_BUCKETS,
)
TOKENS = Spec(
    "lockgate_tokens",
    "Tokens by type: input, output, and cached (input served from the provider's prompt cache).",
    "counter",
    ("model", "type"),
)
COST = Spec("lockgate_cost_usd", "Estimated cost in US dollars.", "counter", ("model", "team"))
CACHE_HITS = Spec(
    "lockgate_cache_hits",
    "Requests answered from the gateway's cache.",
    "counter",
    ("endpoint", "model"),
)
RATE_LIMITED = Spec(
    "lockgate_rate_limited",
    "Requests refused by a rate limit (rate_limit_exceeded).",
    "counter",
    ("model", "team"),
)
BUDGET_REJECTED = Spec(
    "lockgate_budget_rejected",
    "Requests refused because a budget was spent (budget_exceeded).",
    "counter",
    ("model", "team"),
)
SPECS = (
    REQUESTS,
    REQUEST_DURATION,
    TIME_TO_FIRST_TOKEN,
    TOKEN_USAGE,
    UPSTREAM_DURATION,
    OVERHEAD,
    TOKENS,
    COST,
    CACHE_HITS,
    RATE_LIMITED,
    BUDGET_REJECTED,
)
"""Every family `observe` updates, in exposition order."""
IN_FLIGHT = ("lockgate_in_flight", "Requests being served.")
TARGET_HEALTHY = (
    "lockgate_target_healthy",
    "1 while a target is healthy, 0 while its breaker is open or probing.",
)
TARGET_IN_FLIGHT = ("lockgate_target_in_flight", "Upstream requests under way per target.")
