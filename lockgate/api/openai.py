"""OpenAI-compatible endpoints: thin handlers that read, call the pipeline, and render."""

from __future__ import annotations

import orjson

from lockgate.api.http import DisconnectWatch, Request, Send, send_response
from lockgate.api.replies import send_json, serve_chat
from lockgate.auth.identity import Identifier
from lockgate.errors import GatewayError, openai_error_body
from lockgate.pipeline import Gateway
from lockgate.usage.accounting import Accounting, client_left

__all__ = ["OpenAIEndpoints"]


class OpenAIEndpoints:
    """`/v1/chat/completions`, `/v1/embeddings` and `/v1/models`."""

    def __init__(
        self,
        gateway: Gateway,
        identifier: Identifier,
        accounting: Accounting,
        max_body_bytes: int,
        models: list[str],
    ) -> None:
        self._gateway = gateway
        self._identifier = identifier
        self._accounting = accounting
        self._limit = max_body_bytes
        self._models = models
        self._all_models_body = _model_list(models)

    async def chat_completions(self, request: Request, send: Send) -> None:
        await serve_chat(
            request,
            send,
            "chat",
            self._gateway.chat,
            _in_band_error,
            self._identifier,
            self._accounting,
            self._limit,
        )

    async def embeddings(self, request: Request, send: Send) -> None:
        with self._accounting.track(request, "embeddings") as record:
            principal = await self._identifier.identify(request)
            record.identify(principal)
            body = await request.body(self._limit)
            async with DisconnectWatch(request) as watch:
                reply = await self._gateway.embeddings(body, principal, record)
                await send_json(send, reply, request.request_id)
            client_left(watch, record)

    async def models(self, request: Request, send: Send) -> None:
        """The models this caller may use."""
        principal = await self._identifier.identify(request)
        policy = principal.policy
        if policy.allowlists:
            body = _model_list([name for name in self._models if policy.allows(name)])
        else:
            body = self._all_models_body
        await send_response(send, 200, body, [(b"x-request-id", request.request_id)])


def _model_list(names: list[str]) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "lockgate"}
                for name in names
            ],
        }
    )


def _in_band_error(error: GatewayError) -> bytes:
    return b"data: " + openai_error_body(error) + b"\n\n"
