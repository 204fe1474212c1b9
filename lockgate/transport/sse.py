"""Server-sent events framing: split a byte stream into complete events."""

from __future__ import annotations

from lockgate.errors import UpstreamServerError

__all__ = ["MAX_EVENT_BYTES", "EventSplitter", "data_of", "event_too_large"]

MAX_EVENT_BYTES = 8 * 1024 * 1024
"""Largest single event accepted from a provider; a stream that never ends an event is cut."""


def event_too_large() -> UpstreamServerError:
    return UpstreamServerError(
        f"The provider sent a stream event larger than {MAX_EVENT_BYTES} bytes",
        code="upstream_invalid_response",
    )


class EventSplitter:
    """Accumulates bytes and returns each complete event block (without its blank line)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        held = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # maybe half of a CRLF split across two reads
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events = buffer.split(b"\n\n")
        self._buffer = events.pop() + held
        if len(self._buffer) > MAX_EVENT_BYTES:
            raise event_too_large()
        return [event for event in events if event]

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet terminated."""
        return self._buffer


def data_of(event: bytes) -> bytes | None:
    """The `data` field of one event (multi-line data joined by newlines), or None."""
    if event.startswith(b"data:") and b"\n" not in event:
        return event[5:].lstrip(b" ")
    lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None
