"""Anthropic-compatible endpoint: `POST /v1/messages`, a thin handler like the OpenAI ones.

Errors are rendered here in Anthropic's shape (the app's generic handler renders OpenAI's).
Credentials come in `x-api-key` (older Anthropic SDKs) or `Authorization: Bearer` (current
ones); the `anthropic-version` header is accepted and not needed.
"""

from __future__ import annotations

from lockgate.api.http import DisconnectWatch, Request, Send
from lockgate.api.replies import send_error, send_json, send_stream
from lockgate.auth.identity import Identifier
from lockgate.clients.anthropic import in_band_error
from lockgate.errors import GatewayError, anthropic_error
from lockgate.pipeline import Gateway, StreamReply
from lockgate.routing.facts import parse_tags
from lockgate.usage.accounting import Accounting, client_left

__all__ = ["AnthropicEndpoints"]


class AnthropicEndpoints:
    """`/v1/messages`."""

    def __init__(
        self,
        gateway: Gateway,
        identifier: Identifier,
        accounting: Accounting,
        max_body_bytes: int,
    ) -> None:
        self._gateway = gateway
        self._identifier = identifier
        self._accounting = accounting
        self._limit = max_body_bytes

    async def messages(self, request: Request, send: Send) -> None:
        try:
            with self._accounting.track(request, "messages") as record:
                principal = await self._identifier.identify(request)
                record.identify(principal)
                body = await request.body(self._limit)
                async with DisconnectWatch(request.receive) as watch:
                    tags = parse_tags(request.header(b"x-lockgate-tags"))
                    reply = await self._gateway.messages(body, tags, principal, record)
                    if isinstance(reply, StreamReply):
                        await send_stream(send, reply, request.request_id, in_band_error, record)
                    else:
                        await send_json(send, reply, request.request_id)
                client_left(watch, record)
        except GatewayError as error:
            status, error_body = anthropic_error(error)
            await send_error(send, error, request.request_id, status, error_body)
