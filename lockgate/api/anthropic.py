"""Anthropic-compatible endpoint: `POST /v1/messages`, a thin handler like the OpenAI ones.

Errors are rendered here in Anthropic's shape (the app's generic handler renders OpenAI's).
Credentials come in `x-api-key` (older Anthropic SDKs) or `Authorization: Bearer` (current
ones); the `anthropic-version` header is accepted and not needed.
"""

from __future__ import annotations

from lockgate.api.http import Request, Send
from lockgate.api.replies import send_error, serve_chat
from lockgate.auth.identity import Identifier
from lockgate.clients.anthropic import in_band_error
from lockgate.errors import GatewayError, anthropic_error
from lockgate.pipeline import Gateway
from lockgate.usage.accounting import Accounting

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
            await serve_chat(
                request,
                send,
                "messages",
                self._gateway.messages,
                in_band_error,
                self._identifier,
                self._accounting,
                self._limit,
            )
        except GatewayError as error:
            status, error_body = anthropic_error(error)
            await send_error(send, error, request.request_id, status, error_body)
