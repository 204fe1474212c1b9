"""Encoding `application/vnd.amazon.eventstream` messages, as Bedrock's streams carry them.

Prelude (total length, headers length, CRC32 of those 8 bytes), string headers, payload, and
the CRC32 of everything before it. Only string headers (type 7) are written: Bedrock's event
messages use no other kind.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

import orjson

__all__ = ["encode_message", "event_message", "exception_message"]

STRING = 7


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += bytes([len(raw_name)]) + raw_name + bytes([STRING])
        encoded += struct.pack(">H", len(raw_value)) + raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return head + struct.pack(">I", zlib.crc32(head))


def event_message(event_type: str, payload: object) -> bytes:
    """An `event` message, e.g. `contentBlockDelta` with its JSON payload."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, orjson.dumps(payload))


def exception_message(exception_type: str, message: str) -> bytes:
    """An `exception` message (`modelStreamErrorException`, `throttlingException`, ...)."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, orjson.dumps({"message": message}))
