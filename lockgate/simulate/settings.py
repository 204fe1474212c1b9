"""Process-wide defaults for the provider simulator."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Defaults applied to every request unless a directive overrides them.

    ``tokens_per_s`` of 0 disables stream pacing; ``completion_tokens`` is the
    number of words (one word = one token = one stream chunk) in a reply.
    """

    latency_ms: float = 0.0
    tokens_per_s: float = 0.0
    completion_tokens: int = 20
    embedding_dims: int = 16
