"""The provider adapter protocol: translation only, no I/O.

An adapter builds the upstream request for a canonical (OpenAI-shaped) request, turns the
provider's answer, stream and errors back into canonical form. The transport sends; the router
picks targets and retries. Core code reaches adapters only through the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from lockgate.errors import GatewayError

__all__ = [
    "LocalEmbeddings",
    "NativeMessages",
    "ProviderAdapter",
    "StreamParser",
    "UpstreamRequest",
]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """What the transport sends: a POST of `body` to `url`."""

    url: str
    headers: Mapping[str, str]
    body: bytes


class StreamParser(Protocol):
    """Per-request state turning upstream stream bytes into canonical SSE events."""

    @property
    def complete(self) -> bool:
        """True once the provider signalled a normal end of stream."""
        ...

    @property
    def failure(self) -> GatewayError | None:
        """Set once the provider reported an error in the stream; `feed` then returns only the
        events that came before it, and the caller ends the stream with this error."""
        ...

    def feed(self, data: bytes) -> list[bytes]:
        """Canonical SSE completed by `data`: each item holds one or more whole events
        (`data: {...}\\n\\n`); an item may be relayed as it is."""
        ...


class ProviderAdapter(Protocol):
    """One wire protocol, configured for one provider account."""

    name: str

    def chat_request(self, body: dict[str, Any], model: str) -> UpstreamRequest: ...

    def embeddings_request(self, body: dict[str, Any], model: str) -> UpstreamRequest: ...

    def chat_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        """The canonical `chat.completion` for the provider's answer to `request`."""
        ...

    def embeddings_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        """The canonical embeddings list for the provider's answer to `request`."""
        ...

    def stream_parser(self, body: dict[str, Any]) -> StreamParser:
        """A parser for the stream answering `body` (the canonical request as sent)."""
        ...

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError: ...


@runtime_checkable
class NativeMessages(Protocol):
    """Optional capability: the adapter speaks Anthropic's Messages API natively.

    `/v1/messages` requests routed to such an adapter pass through untranslated, so features only
    Anthropic has (`cache_control`, thinking blocks) keep working. A separate protocol rather than
    a method every adapter must have: adapters without it are simply served through translation.
    """

    def native_messages_request(self, body: dict[str, Any], model: str) -> UpstreamRequest | None:
        """The upstream request for a Messages body (its `model` replaced by `model`), or None
        when this adapter cannot pass it through."""
        ...


@runtime_checkable
class LocalEmbeddings(Protocol):
    """Optional capability: the adapter computes embeddings in the gateway, with no upstream."""

    async def local_embeddings(self, body: dict[str, Any], model: str) -> bytes:
        """The canonical embeddings list for `body`, computed by model `model`."""
        ...
