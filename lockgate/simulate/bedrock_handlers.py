"""The simulator speaking AWS Bedrock's Converse API and InvokeModel for embedding models.

Routes: `POST /model/{modelId}/converse` (JSON), `/model/{modelId}/converse-stream`
(`application/vnd.amazon.eventstream`) and `/model/{modelId}/invoke` (Amazon Titan and Cohere
Embed bodies, see `bedrock_embed.py`; other models are 400). A request must carry
`Authorization: AWS4-HMAC-SHA256 ...` (any signature; it is not checked) or a Bedrock API key
(`Bearer ...`); none is 403, as AWS answers. Errors come as AWS sends them: `x-amzn-ErrorType`
header and `{"message": ...}`. Directives work as for the OpenAI format: a model-name suffix
(percent-encoded into the path, `sim%3Fstatus%3D503`), the body field `simulate`, the
`x-simulate` header. With `x-sim-echo-headers: 1` JSON answers carry the request in a
`simulator` field and `GET /sim/echoes` lists it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lockgate.simulate.accounting import counted
from lockgate.simulate.bedrock_embed import invoke_payload, is_embedding_model
from lockgate.simulate.bedrock_request import BedrockApiError, parse_converse_request
from lockgate.simulate.bedrock_stream import ConverseAnswer, stream_converse
from lockgate.simulate.chat_stream import stream_fault
from lockgate.simulate.directives import (
    Directives,
    collect_directives,
    split_model,
)
from lockgate.simulate.echo import echo_payload, wants_echo
from lockgate.simulate.errors import ApiError
from lockgate.simulate.faults import apply_pre_response_faults, scripted
from lockgate.simulate.prompt import estimate_prompt_tokens
from lockgate.simulate.reply import plan_reply
from lockgate.simulate.request_body import read_json_object
from lockgate.simulate.responses import error_response, json_response
from lockgate.simulate.state import SimulatorState

__all__ = ["BedrockHandlers"]

DIRECTIVE_HEADER = "x-simulate"
METHODS = frozenset({"converse", "converse-stream", "invoke"})


def _has_credentials(request: web.BaseRequest) -> bool:
    authorization = request.headers.get("Authorization", "")
    return authorization.startswith("AWS4-HMAC-SHA256 Credential=") or (
        authorization[:7].lower() == "bearer " and len(authorization) > 7
    )


def _as_bedrock(error: ApiError) -> BedrockApiError:
    if isinstance(error, BedrockApiError):
        return error
    return BedrockApiError(error.status, error.message)


class BedrockHandlers:
    def __init__(self, state: SimulatorState) -> None:
        self._state = state
        self._settings = state.settings
        self._stats = state.stats

    async def converse(self, request: web.Request) -> web.StreamResponse:
        """Counts the request and renders failures in AWS's shape."""
        return await counted(
            self._stats,
            self._serve(request),
            lambda error: error_response(_as_bedrock(error)),
            lambda error: error_response(BedrockApiError(400, str(error))),
        )

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if method not in METHODS:
            raise BedrockApiError(404, f"Unknown operation {method}", "UnknownOperationException")
        if not _has_credentials(request):
            raise BedrockApiError(403, "Missing Authentication Token", "AccessDeniedException")
        body = await read_json_object(request)
        model, suffix = split_model(request.match_info["model"])
        self._stats.record_model(model)
        directives = collect_directives(
            suffix, body.get("simulate"), request.headers.get(DIRECTIVE_HEADER)
        )
        if method == "invoke":
            if not is_embedding_model(model):
                raise BedrockApiError(
                    400, f"The simulator serves InvokeModel for embedding models only, not {model}"
                )
            payload = invoke_payload(body, model, self._settings.embedding_dims)
            await self._faults(request, directives, model)
            return self._json(request, payload, body)
        stream = method == "converse-stream"
        chat = parse_converse_request(body, model, stream)
        reply = plan_reply(chat, scripted(directives, self._state, model), self._settings)
        await self._faults(request, directives, model)
        prompt_tokens = estimate_prompt_tokens(chat.messages)
        if stream:
            tokens_per_s = directives.tokens_per_s
            answer = ConverseAnswer(
                reply,
                prompt_tokens,
                self._settings.tokens_per_s if tokens_per_s is None else tokens_per_s,
                stream_fault(directives),
            )
            return await stream_converse(request, answer)
        return self._json(request, ConverseAnswer(reply, prompt_tokens).body(), body)

    async def _faults(self, request: web.Request, directives: Directives, model: str) -> None:
        try:
            await apply_pre_response_faults(request, directives, self._state, model)
        except ApiError as error:
            raise _simulated(error.status, model, directives.retry_after) from None

    def _json(self, request: web.Request, payload: dict[str, Any], body: object) -> web.Response:
        if wants_echo(request):
            payload["simulator"] = echo_payload(request, body)
        return json_response(payload)


def _simulated(status: int, model: str, retry_after: float | None) -> BedrockApiError:
    messages = {
        400: f"Simulated validation error for model {model}.",
        403: "The security token included in the request is invalid.",
        404: "The provided model identifier is invalid.",
        429: "Too many requests, please wait before trying again.",
        503: "Service unavailable. Please try your request again.",
    }
    error = BedrockApiError(status, messages.get(status, f"Simulated error with status {status}."))
    if retry_after is not None:
        error.headers = {**error.headers, "retry-after": f"{retry_after:g}"}
    return error
