"""Decoding `application/vnd.amazon.eventstream`, the binary framing of Bedrock's streams.

A message: a 12-byte prelude (total length, headers length, both big-endian uint32, then the
CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything before it. A
header: name length (1 byte), name, value type (1 byte), value (strings and byte arrays carry a
2-byte length). A wrong CRC or an impossible length means the stream cannot be trusted: the
decoder raises instead of guessing where the next message starts.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = ["EventStreamDecoder", "EventStreamError", "Message"]

PRELUDE = 12
MAX_MESSAGE = 16 * 1024 * 1024  # the format allows 16 MiB messages
# value type -> fixed size (None: 2-byte length prefix follows)
_SIZES: dict[int, int | None] = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 6: None, 7: None, 8: 8, 9: 16}


class EventStreamError(ValueError):
    """The bytes are not a well-formed event stream."""


@dataclass(frozen=True, slots=True)
class Message:
    headers: dict[str, str | int | bool | bytes]
    payload: bytes


def _header_value(kind: int, raw: bytes) -> str | int | bool | bytes:
    if kind in (0, 1):
        return kind == 0
    if kind == 7:
        return raw.decode("utf-8", "replace")
    if kind in (2, 3, 4, 5, 8):
        return int.from_bytes(raw, "big", signed=True)
    return raw


def _headers(data: bytes) -> dict[str, str | int | bool | bytes]:
    headers: dict[str, str | int | bool | bytes] = {}
    at = 0
    try:
        while at < len(data):
            size = data[at]
            name = data[at + 1 : at + 1 + size].decode("utf-8", "replace")
            at += 1 + size
            kind = data[at]
            at += 1
            if kind not in _SIZES:
                raise EventStreamError(f"unknown header value type {kind}")
            length = _SIZES[kind]
            if length is None:
                (length,) = struct.unpack_from(">H", data, at)
                at += 2
            if at + length > len(data):
                raise EventStreamError("header runs past the headers section")
            headers[name] = _header_value(kind, data[at : at + length])
            at += length
    except (IndexError, struct.error):
        raise EventStreamError("truncated header") from None
    return headers


class EventStreamDecoder:
    """Per-stream state: bytes in (split anywhere), whole checked messages out."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message held back."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while len(self._buffer) >= PRELUDE:
            total, headers_length, prelude_crc = struct.unpack_from(">III", self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise EventStreamError("prelude CRC mismatch")
            if not PRELUDE + 4 <= total <= MAX_MESSAGE or headers_length > total - PRELUDE - 4:
                raise EventStreamError(f"impossible message length {total}")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[:-4]) != message_crc:
                raise EventStreamError("message CRC mismatch")
            headers = _headers(frame[PRELUDE : PRELUDE + headers_length])
            messages.append(Message(headers, frame[PRELUDE + headers_length : -4]))
        return messages
