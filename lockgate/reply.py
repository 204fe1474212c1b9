"""What the pipeline answers with: a JSON body, or a stream whose first content has arrived."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

__all__ = ["Headers", "JSONReply", "StreamReply"]

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class JSONReply:
    body: bytes
    headers: Headers = field(default_factory=list)
    status: int = 200


@dataclass(slots=True)
class StreamReply:
    """A stream whose first content already arrived; `events` yields the rest.

    `events` raises `GatewayError` when the stream fails after it started; the client-format
    layer turns that into an in-band error event, so a failed stream never looks complete.
    """

    first: list[bytes]
    events: AsyncIterator[bytes]
    close: Callable[[], None]
    headers: Headers = field(default_factory=list)
