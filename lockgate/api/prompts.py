"""Prompts as REST endpoints: `POST /v1/prompts/{name}` and the config's `apis` paths."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from lockgate.api.http import DisconnectWatch, Request, Send
from lockgate.api.replies import send_json, send_stream
from lockgate.auth.identity import Identifier
from lockgate.config.prompts import PROMPT_API_PREFIX
from lockgate.errors import BadRequest, GatewayError, RouteNotFound, openai_error_body
from lockgate.options import RequestOptions
from lockgate.prompts.registry import PromptRegistry
from lockgate.prompts.runner import PromptRunner
from lockgate.reply import StreamReply
from lockgate.schemas.decode import decode_object
from lockgate.usage.accounting import Accounting, client_left

__all__ = ["PromptEndpoints"]
MAX_QUERY_FIELDS = 100

Handler = Callable[[Request, Send], Awaitable[None]]


class PromptEndpoints:
    def __init__(
        self,
        runner: PromptRunner,
        identifier: Identifier,
        accounting: Accounting,
        max_body_bytes: int,
    ) -> None:
        self._runner = runner
        self._identifier = identifier
        self._accounting = accounting
        self._limit = max_body_bytes

    @property
    def registry(self) -> PromptRegistry:
        """The prompts this container serves."""
        return self._runner.registry

    async def by_name(self, request: Request, send: Send) -> None:
        """`POST /v1/prompts/{name}?version=<ref>&stream=true`; the body is the input."""
        name = request.scope["path"][len(PROMPT_API_PREFIX) :]
        if not name or "/" in name or "@" in name:
            raise RouteNotFound(f"No route for {request.scope['path']}")
        query = _query(request)
        version = query.get("version")
        reference = f"{name}@{version}" if version else name
        await self._serve(request, send, reference, "POST", _wants_stream(query))

    def api(self, reference: str) -> Handler:
        """The handler of one `apis` entry (POST: JSON body; GET: the query string)."""

        async def handle(request: Request, send: Send) -> None:
            method = request.scope["method"]
            stream = _wants_stream(_query(request)) if method == "POST" else False
            await self._serve(request, send, reference, method, stream)

        return handle

    async def _serve(
        self, request: Request, send: Send, reference: str, method: str, stream: bool
    ) -> None:
        with self._accounting.track(request, "prompt") as record:
            principal = await self._identifier.identify(request)
            record.identify(principal)
            data: Any
            if method == "GET":
                data = {k: v for k, v in _query(request).items() if k != "stream"}
            else:
                data = decode_object(await request.body(self._limit))
            options = RequestOptions.from_headers(
                request.header(b"x-lockgate-tags"),
                request.header(b"x-lockgate-cache"),
                request.header(b"x-lockgate-cache-ttl"),
            )
            async with DisconnectWatch(request) as watch:
                reply = await self._runner.call(reference, data, options, principal, record, stream)
                if isinstance(reply, StreamReply):
                    await send_stream(send, reply, request.request_id, _in_band_error, record)
                else:
                    await send_json(send, reply, request.request_id)
            client_left(watch, record)


def _query(request: Request) -> dict[str, str]:
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return {}
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    if len(pairs) > MAX_QUERY_FIELDS:
        raise BadRequest(f"The query string holds more than {MAX_QUERY_FIELDS} fields")
    return dict(pairs)


def _wants_stream(query: dict[str, str]) -> bool:
    return query.get("stream", "").lower() in ("1", "true", "yes")


def _in_band_error(error: GatewayError) -> bytes:
    return b"data: " + openai_error_body(error) + b"\n\n"
