"""The simulator speaking Cohere's v2 API.

Routes: `POST /v2/chat` (JSON, or Cohere's SSE events with `"stream": true`) and `/v2/embed`.
A request must carry `Authorization: Bearer ...` (any key); none is 401, as Cohere answers.
Errors come as Cohere sends them: `{"id", "message"}`. Directives work as for the OpenAI format:
a model-name suffix (`command-a?status=503`), the body field `simulate`, the `x-simulate`
header. With `x-sim-echo-headers: 1` JSON answers carry the request in a `simulator` field and
`GET /sim/echoes` lists it.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from lockgate.simulate.accounting import counted
from lockgate.simulate.chat_stream import stream_fault
from lockgate.simulate.cohere_embed import embed_payload
from lockgate.simulate.cohere_request import (
    CohereApiError,
    parse_chat_request,
    simulated_cohere_error,
)
from lockgate.simulate.cohere_stream import CohereAnswer, stream_cohere
from lockgate.simulate.directives import Directives, collect_directives, split_model
from lockgate.simulate.echo import echo_payload, wants_echo
from lockgate.simulate.errors import ApiError
from lockgate.simulate.faults import apply_pre_response_faults, scripted
from lockgate.simulate.prompt import estimate_prompt_tokens
from lockgate.simulate.reply import plan_reply
from lockgate.simulate.request_body import read_json_object
from lockgate.simulate.responses import error_response, json_response
from lockgate.simulate.state import SimulatorState

__all__ = ["CohereHandlers"]

DIRECTIVE_HEADER = "x-simulate"
OPERATIONS = frozenset({"chat", "embed"})


def _as_cohere(error: ApiError) -> CohereApiError:
    if isinstance(error, CohereApiError):
        return error
    return CohereApiError(error.status, error.message, headers=error.headers)


class CohereHandlers:
    def __init__(self, state: SimulatorState) -> None:
        self._state = state
        self._settings = state.settings
        self._stats = state.stats

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """`POST /v2/{operation}`: counts the request and renders failures in Cohere's shape."""
        return await counted(
            self._stats,
            self._serve(request),
            lambda error: error_response(_as_cohere(error)),
            lambda error: error_response(CohereApiError(400, f"invalid request: {error}")),
        )

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        operation = request.match_info["operation"]
        if operation not in OPERATIONS:
            raise CohereApiError(404, f"endpoint /v2/{operation} not found")
        authorization = request.headers.get("Authorization", "")
        if authorization[:7].lower() != "bearer " or not authorization[7:].strip():
            raise CohereApiError(401, "no api key supplied")
        body = await read_json_object(request)
        raw_model = body.get("model")
        if not isinstance(raw_model, str) or not raw_model:
            raise CohereApiError(400, "invalid request: model must be a non-empty string")
        model, suffix = split_model(raw_model)
        self._stats.record_model(model)
        directives = collect_directives(
            suffix, body.get("simulate"), request.headers.get(DIRECTIVE_HEADER)
        )
        if operation == "embed":
            payload = embed_payload(body, self._settings.embedding_dims)
            await self._faults(request, directives, model)
            return self._json(request, payload, body)
        return await self._chat(request, body, model, directives)

    async def _chat(
        self, request: web.Request, body: dict[str, Any], model: str, directives: Directives
    ) -> web.StreamResponse:
        chat = parse_chat_request(body, model)
        reply = plan_reply(chat, scripted(directives, self._state, model), self._settings)
        await self._faults(request, directives, model)
        tokens_per_s = directives.tokens_per_s
        answer = CohereAnswer(
            reply,
            estimate_prompt_tokens(chat.messages),
            str(uuid.uuid4()),
            self._settings.tokens_per_s if tokens_per_s is None else tokens_per_s,
            stream_fault(directives),
        )
        if chat.stream:
            return await stream_cohere(request, answer)
        return self._json(request, answer.body(), body)

    async def _faults(self, request: web.Request, directives: Directives, model: str) -> None:
        try:
            await apply_pre_response_faults(request, directives, self._state, model)
        except ApiError as error:
            raise simulated_cohere_error(error.status, model, directives.retry_after) from None

    def _json(self, request: web.Request, payload: dict[str, Any], body: object) -> web.Response:
        if wants_echo(request):
            payload["simulator"] = echo_payload(request, body)
        return json_response(payload)
