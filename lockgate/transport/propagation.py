"""Trace-context headers for the upstream call being made in this task (tracing on only).

The traced attempt sets them; the transport adds them to the request it sends. A context
variable keeps them out of every signature between the two, and costs one lookup when unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar

__all__ = ["PROPAGATION"]

PROPAGATION: ContextVar[Mapping[str, str] | None] = ContextVar("lockgate_propagation", default=None)
