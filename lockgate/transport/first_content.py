"""Holding a stream until its first content: failures before it may still fall back.

Until content reached the client, a failed stream is just a failed attempt, and the router may try
the next target; after it, a failure can only be reported in-band.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from lockgate.errors import UpstreamServerError
from lockgate.providers.base import StreamParser
from lockgate.transport.client import UpstreamStream

__all__ = ["carries_content", "until_content"]

_decode = msgspec.json.Decoder().decode


async def until_content(
    stream: UpstreamStream,
    parser: StreamParser,
    provider: str,
    has_content: Callable[[bytes], bool],
) -> list[bytes]:
    """Events up to and including the first that carries content (text or a tool call)."""
    held: list[bytes] = []
    while chunk := await stream.next_chunk():
        events = parser.feed(chunk)
        held += events
        if parser.complete or any(
            has_content(event) for block in events for event in block.split(b"\n\n")
        ):
            return held  # a failure after this content is reported by the relay
        if parser.failure is not None:
            raise parser.failure  # nothing reached the client yet: the router may fall back
    raise UpstreamServerError(
        f"Provider '{provider}' closed the stream before sending any content",
        code="stream_truncated",
    )


def carries_content(event: bytes) -> bool:
    """Does one canonical chunk event carry text, a tool call or a finish reason?"""
    if not event.startswith(b"data:") or event.startswith(b"data: [DONE]"):
        return False
    try:
        chunk = _decode(event[5:].strip())
    except msgspec.DecodeError:
        return False
    if not isinstance(chunk, dict):
        return False
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if choice.get("finish_reason") or (
            isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls"))
        ):
            return True
    return False
