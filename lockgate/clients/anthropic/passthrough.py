"""Watching a stream an Anthropic target answers natively, while its events pass unchanged.

The watch satisfies the `StreamParser` protocol so the pipeline's stream handling (hold until the
first content, idle timeouts, truncation checks) applies as for translated streams: events are
relayed as they came, `message_stop` completes the stream, and an `error` event becomes the
stream's `failure` (the client-format layer sends it as Anthropic's `error` event, once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import orjson

from lockgate.errors import GatewayError, UpstreamServerError
from lockgate.transport.sse import EventSplitter, data_of

__all__ = ["NativeStreamWatch", "native_has_content"]

ErrorMapper = Callable[[int, Mapping[str, str], bytes], GatewayError]
"""An adapter's `error(status, headers, body)`: maps and scrubs the provider's error."""

_STATUS_OF_TYPE: Mapping[str, int] = MappingProxyType(
    {
        "invalid_request_error": 400,
        "rate_limit_error": 429,
        "timeout_error": 504,
        "overloaded_error": 529,
    }
)
_CONTENT_EVENTS = frozenset({"content_block_delta", "message_delta"})


def _type_of(event: bytes) -> str | None:
    payload = data_of(event)
    if payload is None:
        return None
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


def native_has_content(event: bytes) -> bool:
    """Does one native event carry content (so a failure after it cannot fall back)?"""
    return _type_of(event) in _CONTENT_EVENTS


class NativeStreamWatch:
    """Per-request state: splits the upstream bytes into events and notes the end or an error."""

    __slots__ = ("_map_error", "_provider", "_splitter", "complete", "failure")

    def __init__(self, provider: str, map_error: ErrorMapper) -> None:
        self._provider = provider
        self._map_error = map_error
        self._splitter = EventSplitter()
        self.complete = False
        self.failure: GatewayError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        events: list[bytes] = []
        for event in self._splitter.feed(data):
            if self.complete or self.failure is not None:
                break
            kind = _type_of(event)
            if kind == "error":
                self.failure = self._error(data_of(event) or b"")
                break
            if kind == "message_stop":
                self.complete = True
            events.append(event + b"\n\n")
        return events

    def _error(self, payload: bytes) -> GatewayError:
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            value = None
        error = value.get("error") if isinstance(value, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        if not isinstance(kind, str):
            return UpstreamServerError(f"Provider '{self._provider}' failed mid-stream")
        return self._map_error(_STATUS_OF_TYPE.get(kind, 500), {}, payload)
