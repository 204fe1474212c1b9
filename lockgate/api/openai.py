"""OpenAI-compatible endpoints: thin handlers that read, call the pipeline, and render."""

from __future__ import annotations

import logging

import orjson

from lockgate.api.http import DisconnectWatch, Request, Send, send_response
from lockgate.errors import GatewayError, openai_error_body
from lockgate.pipeline import Gateway, JSONReply, StreamReply
from lockgate.routing.facts import parse_tags

__all__ = ["OpenAIEndpoints"]

log = logging.getLogger("lockgate.api")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class OpenAIEndpoints:
    """`/v1/chat/completions`, `/v1/embeddings` and `/v1/models`."""

    def __init__(self, gateway: Gateway, max_body_bytes: int, models: list[str]) -> None:
        self._gateway = gateway
        self._limit = max_body_bytes
        self._models_body = orjson.dumps(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "lockgate"}
                    for name in models
                ],
            }
        )

    async def chat_completions(self, request: Request, send: Send) -> None:
        body = await request.body(self._limit)
        async with DisconnectWatch(request.receive):
            reply = await self._gateway.chat(body, parse_tags(request.header(b"x-lockgate-tags")))
            if isinstance(reply, StreamReply):
                await _send_stream(send, reply, request.request_id)
            else:
                await _send_json(send, reply, request.request_id)

    async def embeddings(self, request: Request, send: Send) -> None:
        body = await request.body(self._limit)
        async with DisconnectWatch(request.receive):
            reply = await self._gateway.embeddings(body)
            await _send_json(send, reply, request.request_id)

    async def models(self, request: Request, send: Send) -> None:
        await send_response(send, 200, self._models_body, [(b"x-request-id", request.request_id)])


async def _send_json(send: Send, reply: JSONReply, request_id: bytes) -> None:
    await send_response(
        send, reply.status, reply.body, [(b"x-request-id", request_id), *reply.headers]
    )


async def _send_stream(send: Send, reply: StreamReply, request_id: bytes) -> None:
    """Relay events as they arrive; a failure after the start becomes an in-band error event."""
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_SSE_HEADERS, (b"x-request-id", request_id), *reply.headers],
            }
        )
        await send({"type": "http.response.body", "body": b"".join(reply.first), "more_body": True})
        try:
            async for events in reply.events:
                await send({"type": "http.response.body", "body": events, "more_body": True})
        except GatewayError as error:
            log.warning(
                "stream failed after it started: %s (request %s)",
                error.message,
                request_id.decode(),
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + openai_error_body(error) + b"\n\n",
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b""})
    finally:
        reply.close()
