"""Canonical stream chunks, shared by the adapters that translate a provider's stream."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["ChunkEncoding"]


class ChunkEncoding:
    """Mixin for stream parsers: encodes OpenAI `chat.completion.chunk` events.

    The parser sets `_id`, `_created` and `_model` (all chunks of a stream carry the same) and
    `_include_usage` (the client asked for `stream_options.include_usage`).
    """

    __slots__ = ()

    _id: object
    _created: int
    _model: object
    _include_usage: bool

    def _chunk(self, delta: dict[str, Any], reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return self._encode([choice], None)

    def _encode(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = usage  # null on every chunk but the last, as OpenAI does
        return b"data: " + orjson.dumps(chunk) + b"\n\n"
