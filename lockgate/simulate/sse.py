"""Server-sent-event framing of ``chat.completion.chunk`` objects.

The fields shared by every chunk of a stream are serialised once; each event
then only encodes its ``choices`` entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from lockgate.simulate.ids import SYSTEM_FINGERPRINT

DONE_EVENT = b"data: [DONE]\n\n"
SSE_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
)


class ChunkEncoder:
    __slots__ = ("_prefix", "_suffix")

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        head = orjson.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
        )
        self._prefix = b"data: " + head[:-1] + b',"choices":['
        # With include_usage every chunk but the last carries "usage": null.
        self._suffix = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"

    def choice(self, index: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        entry = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._prefix + orjson.dumps(entry) + self._suffix

    def all_choices(self, n: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        """One event per choice (as OpenAI sends them), joined for a single write."""
        if n == 1:
            return self.choice(0, delta, finish_reason)
        return b"".join(self.choice(index, delta, finish_reason) for index in range(n))

    def usage(self, usage: dict[str, Any]) -> bytes:
        return self._prefix + b'],"usage":' + orjson.dumps(usage) + b"}\n\n"


def error_event(message: str, error_type: str = "server_error", code: str | None = None) -> bytes:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return b"data: " + orjson.dumps(body) + b"\n\n"
