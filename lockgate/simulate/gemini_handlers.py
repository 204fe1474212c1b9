"""The simulator speaking Google's Gemini API and Vertex AI.

Routes (the model and method share the last path segment, `{model}:{method}`):

- `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
  `:batchEmbedContents` (Gemini API);
- `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent`,
  `:streamGenerateContent?alt=sse`, `:predict` (Vertex AI; embeddings).

Credentials: `x-goog-api-key`, the `key` query parameter, or `Authorization: Bearer`; none at
all is 403 PERMISSION_DENIED (Gemini API) or 401 UNAUTHENTICATED (Vertex), as Google answers.
Directives work as for the OpenAI format: a model-name suffix (percent-encoded into the path,
`sim-small%3Fstatus%3D503:generateContent`), the body field `simulate`, the `x-simulate` header.
With `x-sim-echo-headers: 1` JSON answers carry the request (headers, path, query, body) in a
top-level `simulator` field, and `GET /sim/echoes` lists it (streams included): a gateway
translating the answer drops the field, so gateway tests read the log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from lockgate.simulate.accounting import counted
from lockgate.simulate.chat_stream import stream_fault
from lockgate.simulate.directives import Directives, collect_directives, split_model
from lockgate.simulate.echo import echo_payload, wants_echo
from lockgate.simulate.errors import ApiError
from lockgate.simulate.faults import apply_pre_response_faults, scripted
from lockgate.simulate.gemini_embeddings import batch_embed_payload, predict_payload
from lockgate.simulate.gemini_errors import (
    GeminiApiError,
    as_gemini,
    invalid_argument,
    missing_credentials,
    simulated_failure,
)
from lockgate.simulate.gemini_payload import GeminiAnswer, response_id
from lockgate.simulate.gemini_request import parse_generate_request
from lockgate.simulate.gemini_stream import GeminiStreamPlan, stream_generate
from lockgate.simulate.prompt import estimate_prompt_tokens
from lockgate.simulate.reply import plan_reply
from lockgate.simulate.request_body import read_json_object
from lockgate.simulate.responses import error_response, json_response
from lockgate.simulate.state import SimulatorState

__all__ = ["GeminiHandlers"]

DIRECTIVE_HEADER = "x-simulate"
GEMINI_METHODS = frozenset({"generateContent", "streamGenerateContent", "batchEmbedContents"})
VERTEX_METHODS = frozenset({"generateContent", "streamGenerateContent", "predict"})
Serve = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _has_credentials(request: web.BaseRequest) -> bool:
    authorization = request.headers.get("Authorization", "")
    return (
        bool(request.headers.get("x-goog-api-key"))
        or bool(request.query.get("key"))
        or authorization[:7].lower() == "bearer "
    )


class GeminiHandlers:
    def __init__(self, state: SimulatorState) -> None:
        self._state = state
        self._settings = state.settings
        self._stats = state.stats

    async def gemini(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch(request, lambda r: self._serve(r, vertex=False))

    async def vertex(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch(request, lambda r: self._serve(r, vertex=True))

    async def _dispatch(self, request: web.Request, serve: Serve) -> web.StreamResponse:
        """Counts the request and renders failures in Google's shape."""
        return await counted(
            self._stats,
            serve(request),
            lambda error: error_response(as_gemini(error)),
            lambda error: error_response(invalid_argument(str(error))),
        )

    async def _serve(self, request: web.Request, *, vertex: bool) -> web.StreamResponse:
        target, _, method = request.match_info["target"].rpartition(":")
        if not target or method not in (VERTEX_METHODS if vertex else GEMINI_METHODS):
            raise GeminiApiError(404, f"Method not found: {method or target}")
        if not _has_credentials(request):
            raise missing_credentials(vertex)
        body = await read_json_object(request)
        model, suffix = split_model(target)
        self._stats.record_model(model)
        directives = collect_directives(
            suffix, body.get("simulate"), request.headers.get(DIRECTIVE_HEADER)
        )
        if method in ("batchEmbedContents", "predict"):
            dims = self._settings.embedding_dims
            body.pop("simulate", None)
            payload = (
                predict_payload(body, dims) if vertex else batch_embed_payload(body, model, dims)
            )
            await self._faults(request, directives, model)
            return self._json(request, payload, body)
        return await self._generate(request, body, model, directives, method)

    async def _generate(
        self,
        request: web.Request,
        body: dict[str, Any],
        model: str,
        directives: Directives,
        method: str,
    ) -> web.StreamResponse:
        stream = method == "streamGenerateContent"
        if stream and request.query.get("alt") != "sse":
            raise invalid_argument("The simulator streams server-sent events only: add ?alt=sse")
        chat = parse_generate_request(body, model, stream)
        reply = plan_reply(chat, scripted(directives, self._state, model), self._settings)
        await self._faults(request, directives, model)
        answer = GeminiAnswer(
            model=model,
            response_id=response_id(),
            n=chat.n,
            prompt_tokens=estimate_prompt_tokens(chat.messages),
            reply=reply,
        )
        if stream:
            tokens_per_s = directives.tokens_per_s
            plan = GeminiStreamPlan(
                answer,
                self._settings.tokens_per_s if tokens_per_s is None else tokens_per_s,
                stream_fault(directives),
            )
            return await stream_generate(request, plan)
        return self._json(request, answer.complete(), body)

    async def _faults(self, request: web.Request, directives: Directives, model: str) -> None:
        """Latency, reset, hang, and status failures rendered as Gemini would send them."""
        try:
            await apply_pre_response_faults(request, directives, self._state, model)
        except ApiError as error:
            raise simulated_failure(error.status, model, directives.retry_after) from None

    def _json(self, request: web.Request, payload: dict[str, Any], body: object) -> web.Response:
        if wants_echo(request):
            payload["simulator"] = echo_payload(request, body)
        return json_response(payload)
