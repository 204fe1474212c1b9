"""aiohttp request handlers for the simulator's routes.

Every API handler runs inside :meth:`SimulatorHandlers._dispatch`, which keeps
the counters, renders :class:`ApiError`/:class:`DirectiveError` as OpenAI
error bodies and treats a vanished client as a cancellation.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from lockgate.simulate.accounting import counted
from lockgate.simulate.auth import has_credentials
from lockgate.simulate.chat_json import completion_payload
from lockgate.simulate.chat_request import parse_chat_request
from lockgate.simulate.chat_stream import StreamPlan, stream_chat, stream_fault
from lockgate.simulate.directives import DirectiveError, Directives, collect_directives, split_model
from lockgate.simulate.echo import echo_payload, wants_echo
from lockgate.simulate.embeddings import embeddings_payload
from lockgate.simulate.errors import (
    ApiError,
    invalid_request,
    invalid_type,
    invalid_url,
    missing_api_key,
    missing_parameter,
    model_not_found,
)
from lockgate.simulate.faults import apply_pre_response_faults, scripted
from lockgate.simulate.ids import completion_id
from lockgate.simulate.models import MODEL_IDS, model_object, models_payload
from lockgate.simulate.prompt import estimate_prompt_tokens
from lockgate.simulate.reply import plan_reply
from lockgate.simulate.request_body import read_json_object
from lockgate.simulate.responses import error_response, json_bytes_response, json_response
from lockgate.simulate.state import SimulatorState

Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]
DIRECTIVE_HEADER = "x-simulate"
# Status recorded for requests whose connection went away before an answer.


def _directive_error(error: DirectiveError) -> ApiError:
    return invalid_request(str(error), param=error.param, code="invalid_simulator_directive")


class SimulatorHandlers:
    def __init__(self, state: SimulatorState) -> None:
        self._state = state
        self._settings = state.settings
        self._stats = state.stats
        self._models_body = orjson.dumps(models_payload())

    # -- plumbing ---------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        return await counted(
            self._stats,
            endpoint(request),
            error_response,
            lambda error: error_response(_directive_error(error)),
        )

    def _respond(self, request: web.Request, payload: dict[str, Any], body: object) -> web.Response:
        if wants_echo(request):
            payload["simulator"] = echo_payload(request, body)
        return json_response(payload)

    def _resolve(
        self, request: web.Request, body: dict[str, Any], deployment: str | None
    ) -> tuple[str, Directives]:
        """The model a request is for (without directive suffix) and its directives."""
        raw_model = body.get("model")
        if deployment is not None:
            model = deployment
            suffix = split_model(raw_model)[1] if isinstance(raw_model, str) else None
        else:
            if raw_model is None:
                raise missing_parameter("model")
            if not isinstance(raw_model, str):
                raise invalid_type("model", "a string")
            model, suffix = split_model(raw_model)
            if not model:
                raise missing_parameter("model")
        self._stats.record_model(model)
        header = request.headers.get(DIRECTIVE_HEADER)
        return model, collect_directives(suffix, body.get("simulate"), header)

    # -- chat completions -------------------------------------------------------------------

    async def _chat(self, request: web.Request, deployment: str | None) -> web.StreamResponse:
        if not has_credentials(request):
            raise missing_api_key()
        body = await read_json_object(request)
        model, directives = self._resolve(request, body, deployment)
        chat = parse_chat_request(body, model)
        reply = plan_reply(chat, scripted(directives, self._state, model), self._settings)
        await apply_pre_response_faults(request, directives, self._state, model)
        prompt_tokens = estimate_prompt_tokens(chat.messages)
        created = int(time.time())
        if chat.stream:
            tokens_per_s = directives.tokens_per_s
            plan = StreamPlan(
                completion_id=completion_id(),
                created=created,
                model=model,
                n=chat.n,
                include_usage=chat.include_usage,
                reply=reply,
                prompt_tokens=prompt_tokens,
                tokens_per_s=self._settings.tokens_per_s if tokens_per_s is None else tokens_per_s,
                fault=stream_fault(directives),
            )
            return await stream_chat(request, plan)
        payload = completion_payload(
            completion_id=completion_id(),
            created=created,
            model=model,
            n=chat.n,
            reply=reply,
            prompt_tokens=prompt_tokens,
        )
        return self._respond(request, payload, body)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch(request, lambda r: self._chat(r, None))

    async def azure_chat_completions(self, request: web.Request) -> web.StreamResponse:
        deployment = request.match_info["deployment"]
        return await self._dispatch(request, lambda r: self._chat(r, deployment))

    # -- embeddings -------------------------------------------------------------------------

    async def _embeddings(self, request: web.Request, deployment: str | None) -> web.Response:
        if not has_credentials(request):
            raise missing_api_key()
        body = await read_json_object(request)
        model, directives = self._resolve(request, body, deployment)
        payload = embeddings_payload(body, model, self._settings.embedding_dims)
        await apply_pre_response_faults(request, directives, self._state, model)
        return self._respond(request, payload, body)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch(request, lambda r: self._embeddings(r, None))

    async def azure_embeddings(self, request: web.Request) -> web.StreamResponse:
        deployment = request.match_info["deployment"]
        return await self._dispatch(request, lambda r: self._embeddings(r, deployment))

    # -- models -----------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        if not has_credentials(request):
            raise missing_api_key()
        if wants_echo(request):
            return self._respond(request, models_payload(), None)
        return json_bytes_response(self._models_body)

    async def _model(self, request: web.Request) -> web.Response:
        if not has_credentials(request):
            raise missing_api_key()
        model_id = request.match_info["model"]
        if model_id not in MODEL_IDS:
            raise model_not_found(model_id)
        return self._respond(request, model_object(model_id), None)

    async def models(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch(request, self._models)

    async def model(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch(request, self._model)

    # -- simulator control (not counted) ----------------------------------------------------

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(self._stats.snapshot())

    async def reset(self, request: web.Request) -> web.Response:
        self._state.reset()
        return json_response(self._stats.snapshot())

    async def not_found(self, request: web.Request) -> web.Response:
        return error_response(invalid_url(request.method, request.path))
