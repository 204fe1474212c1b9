"""Sending the pipeline's replies and errors, shared by the client formats (OpenAI, Anthropic)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from lockgate.api.http import DisconnectWatch, Request, Send, send_response
from lockgate.auth.identity import Identifier
from lockgate.auth.policy import Principal
from lockgate.errors import GatewayError, UpstreamServerError
from lockgate.options import RequestOptions
from lockgate.reply import JSONReply, StreamReply
from lockgate.usage.accounting import Accounting, client_left
from lockgate.usage.record import Endpoint, UsageRecord

ChatCall = Callable[
    [bytes, RequestOptions, Principal, UsageRecord], Awaitable[JSONReply | StreamReply]
]
"""`Gateway.chat` or `Gateway.messages`."""

__all__ = ["ChatCall", "send_error", "send_json", "send_stream", "serve_chat"]

log = logging.getLogger("lockgate.api")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def serve_chat(
    request: Request,
    send: Send,
    endpoint: Endpoint,
    call: ChatCall,
    in_band_error: Callable[[GatewayError], bytes],
    identifier: Identifier,
    accounting: Accounting,
    max_body_bytes: int,
) -> None:
    """Identify, read, call the pipeline and send its answer (JSON or a stream), accounted."""
    with accounting.track(request, endpoint) as record:
        principal = await identifier.identify(request)
        record.identify(principal)
        body = await request.body(max_body_bytes)
        async with DisconnectWatch(request) as watch:
            options = RequestOptions.from_headers(
                request.header(b"x-lockgate-tags"),
                request.header(b"x-lockgate-cache"),
                request.header(b"x-lockgate-cache-ttl"),
            )
            reply = await call(body, options, principal, record)
            if isinstance(reply, StreamReply):
                await send_stream(send, reply, request.request_id, in_band_error, record)
            else:
                await send_json(send, reply, request.request_id)
        client_left(watch, record)


async def send_json(send: Send, reply: JSONReply, request_id: bytes) -> None:
    await send_response(
        send, reply.status, reply.body, [(b"x-request-id", request_id), *reply.headers]
    )


async def send_error(
    send: Send, error: GatewayError, request_id: bytes, status: int, body: bytes
) -> None:
    """`body` (the error in the client's format) with the error's own headers."""
    headers = [(b"x-request-id", request_id)]
    headers += [(name.encode(), value.encode()) for name, value in error.headers.items()]
    if error.attempts:
        headers.append((b"x-lockgate-attempts", str(error.attempts).encode()))
    await send_response(send, status, body, headers)


async def send_stream(
    send: Send,
    reply: StreamReply,
    request_id: bytes,
    in_band_error: Callable[[GatewayError], bytes],
    record: UsageRecord,
) -> None:
    """Relay events as they arrive; a failure after the start becomes `in_band_error(error)`.

    The record keeps the failure: the response said 200, but the request did not succeed.
    """
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
            record.fail(error.status, error.code)
            log.warning(
                "stream failed after it started: %s (request %s)",
                error.message,
                request_id.decode(),
            )
            await send(
                {"type": "http.response.body", "body": in_band_error(error), "more_body": True}
            )
        except Exception:
            # The response has started: it can only end with an error event, never a second
            # response start.
            log.exception("stream failed after it started (request %s)", request_id.decode())
            internal = UpstreamServerError("The gateway failed while relaying the stream")
            record.fail(internal.status, "internal_error")
            await send(
                {"type": "http.response.body", "body": in_band_error(internal), "more_body": True}
            )
        await send({"type": "http.response.body", "body": b""})
    finally:
        reply.close()
