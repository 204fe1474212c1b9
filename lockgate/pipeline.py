"""The request path (DESIGN §2) as a short sequence of stages.

identify -> parse -> admit -> guard -> cache -> route -> translate + call -> guard -> account.
The gateway core implements parse, route and call; the other stages land with their issues.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from lockgate.config.models import GatewayConfig
from lockgate.errors import BadRequest, GatewayError, UpstreamServerError
from lockgate.providers.base import StreamParser, UpstreamRequest
from lockgate.routing.router import Router, Target
from lockgate.schemas.chat import ChatCompletionRequest
from lockgate.schemas.decode import decode_object, validate
from lockgate.schemas.embeddings import EmbeddingsRequest
from lockgate.transport.client import UpstreamClient, UpstreamStream

__all__ = ["Gateway", "JSONReply", "StreamReply"]

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class JSONReply:
    body: bytes
    headers: Headers = field(default_factory=list)
    status: int = 200


@dataclass(slots=True)
class StreamReply:
    """A stream whose first events already arrived; `events` yields the rest.

    `events` raises `GatewayError` when the stream fails after it started; the client-format
    layer turns that into an in-band error event, so a failed stream never looks complete.
    """

    first: list[bytes]
    events: AsyncIterator[bytes]
    close: Callable[[], None]
    headers: Headers = field(default_factory=list)


class _Deadline:
    """Caps each wait by what is left of the request's overall deadline, if one is set."""

    __slots__ = ("_end",)

    def __init__(self, deadline_s: float | None) -> None:
        self._end = None if deadline_s is None else asyncio.get_running_loop().time() + deadline_s

    @property
    def when(self) -> float | None:
        """Loop time at which the request must end, or None."""
        return self._end

    def cap(self, timeout_s: float) -> float:
        if self._end is None:
            return timeout_s
        return max(0.0, min(timeout_s, self._end - asyncio.get_running_loop().time()))


class Gateway:
    """Serves canonical (OpenAI-shaped) requests through the configured targets."""

    def __init__(self, config: GatewayConfig, router: Router, client: UpstreamClient) -> None:
        self._router = router
        self._client = client
        self._max_messages = config.server.max_messages
        routing = config.routing
        self._timeout_s = routing.timeout_s
        self._idle_timeout_s = routing.stream_idle_timeout_s
        self._deadline_s = routing.deadline_s

    async def chat(self, body: bytes) -> JSONReply | StreamReply:
        raw = decode_object(body)
        request = validate(raw, ChatCompletionRequest)
        self._check_messages(request)
        target = self._router.resolve(request.model)
        upstream = target.adapter.chat_request(raw, target.model)
        deadline = _Deadline(self._deadline_s)
        if request.stream:
            return await self._stream(target, raw, upstream, deadline)
        response = await self._client.send(
            upstream, target.adapter.name, deadline.cap(self._timeout_s)
        )
        if response.status >= 400:
            raise target.adapter.error(response.status, response.headers, response.body)
        return JSONReply(target.adapter.chat_response(response.body), _target_headers(target))

    async def embeddings(self, body: bytes) -> JSONReply:
        raw = decode_object(body)
        request = validate(raw, EmbeddingsRequest)
        target = self._router.resolve(request.model)
        upstream = target.adapter.embeddings_request(raw, target.model)
        deadline = _Deadline(self._deadline_s)
        response = await self._client.send(
            upstream, target.adapter.name, deadline.cap(self._timeout_s)
        )
        if response.status >= 400:
            raise target.adapter.error(response.status, response.headers, response.body)
        return JSONReply(target.adapter.embeddings_response(response.body), _target_headers(target))

    def _check_messages(self, request: ChatCompletionRequest) -> None:
        if not request.messages:
            raise BadRequest("'messages' must hold at least one message", param="messages")
        if len(request.messages) > self._max_messages:
            raise BadRequest(
                f"'messages' holds {len(request.messages)} messages; the limit is "
                f"{self._max_messages}",
                param="messages",
            )

    async def _stream(
        self,
        target: Target,
        body: dict[str, Any],
        upstream_request: UpstreamRequest,
        deadline: _Deadline,
    ) -> StreamReply:
        adapter = target.adapter
        timeout_s = deadline.cap(self._timeout_s)
        stream = await self._client.open_stream(
            upstream_request, adapter.name, timeout_s, self._idle_timeout_s
        )
        try:
            if stream.status >= 400:
                raise adapter.error(stream.status, stream.headers, await stream.read_error_body())
            parser = adapter.stream_parser(body)
            async with asyncio.timeout(timeout_s):
                first = await _first_events(stream, parser, adapter.name)
        except TimeoutError:
            stream.close()
            raise UpstreamServerError(
                f"Provider '{adapter.name}' sent no stream data within {timeout_s:g}s",
                code="upstream_timeout",
                status=504,
            ) from None
        except BaseException:
            stream.close()
            raise
        return StreamReply(
            first,
            self._relay(stream, parser, adapter.name, deadline),
            stream.close,
            _target_headers(target),
        )

    async def _relay(
        self, stream: UpstreamStream, parser: StreamParser, provider: str, deadline: _Deadline
    ) -> AsyncIterator[bytes]:
        try:
            async with asyncio.timeout_at(deadline.when):
                while chunk := await stream.next_chunk():
                    events = parser.feed(chunk)
                    if events:
                        yield b"".join(events) if len(events) > 1 else events[0]
        except TimeoutError:
            raise GatewayError(
                f"The request exceeded its deadline of {self._deadline_s:g}s",
                code="deadline_exceeded",
                status=504,
            ) from None
        finally:
            stream.close()
        if not parser.complete:
            raise UpstreamServerError(
                f"Provider '{provider}' ended the stream before it was complete",
                code="stream_truncated",
            )


async def _first_events(stream: UpstreamStream, parser: StreamParser, provider: str) -> list[bytes]:
    while chunk := await stream.next_chunk():
        events = parser.feed(chunk)
        if events:
            return events
    raise UpstreamServerError(
        f"Provider '{provider}' closed the stream before sending any data",
        code="stream_truncated",
    )


def _target_headers(target: Target) -> Headers:
    return [(b"x-lockgate-model", target.label.encode())]
