"""Server-sent events framing: split a byte stream into complete events."""

from __future__ import annotations

__all__ = ["EventSplitter", "data_of"]


class EventSplitter:
    """Accumulates bytes and returns each complete event block (without its blank line)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + data if self._buffer else data
        events = buffer.split(b"\n\n")
        self._buffer = events.pop()
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
