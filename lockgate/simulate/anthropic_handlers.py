"""`POST /v1/messages`: the simulator speaking Anthropic's Messages API.

Same counters, directives, reply planning and faults as the OpenAI format; Anthropic's auth
(`x-api-key`, or a bearer token), required `anthropic-version` header, bodies, stream events and
error shapes.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from lockgate.simulate.accounting import counted
from lockgate.simulate.anthropic_errors import (
    anthropic_error_response,
    invalid,
    missing_api_key,
    request_id,
    simulated_failure,
)
from lockgate.simulate.anthropic_message import message_id, message_payload, stop_of
from lockgate.simulate.anthropic_request import parse_messages_request
from lockgate.simulate.anthropic_stream import AnthropicStreamPlan, stream_messages
from lockgate.simulate.chat_stream import stream_fault
from lockgate.simulate.directives import collect_directives, split_model
from lockgate.simulate.echo import echo_payload, wants_echo
from lockgate.simulate.errors import ApiError
from lockgate.simulate.faults import apply_pre_response_faults, scripted
from lockgate.simulate.prompt import estimate_prompt_tokens
from lockgate.simulate.reply import plan_reply
from lockgate.simulate.responses import json_response
from lockgate.simulate.state import SimulatorState

__all__ = ["AnthropicHandlers"]

DIRECTIVE_HEADER = "x-simulate"


def _has_key(request: web.BaseRequest) -> bool:
    authorization = request.headers.get("Authorization", "")
    return bool(request.headers.get("x-api-key")) or authorization[:7].lower() == "bearer "


async def _read_body(request: web.BaseRequest) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise invalid("There was an issue with the format of your request: invalid JSON") from None
    if not isinstance(body, dict):
        raise invalid("Input should be a valid dictionary")
    return body


class AnthropicHandlers:
    def __init__(self, state: SimulatorState) -> None:
        self._state = state
        self._settings = state.settings
        self._stats = state.stats

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """Counts the request and renders failures in Anthropic's shape."""
        return await counted(
            self._stats,
            self._messages(request),
            lambda error: anthropic_error_response(error),
            lambda error: anthropic_error_response(invalid(str(error))),
        )

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        if not _has_key(request):
            raise missing_api_key()
        if not request.headers.get("anthropic-version"):
            raise invalid("anthropic-version: header is required")
        body = await _read_body(request)
        raw_model = body.get("model")
        if not isinstance(raw_model, str) or not split_model(raw_model)[0]:
            raise invalid("model: Field required")
        model, suffix = split_model(raw_model)
        self._stats.record_model(model)
        header = request.headers.get(DIRECTIVE_HEADER)
        directives = collect_directives(suffix, body.get("simulate"), header)
        chat = parse_messages_request(body, model)
        reply = plan_reply(chat, scripted(directives, self._state, model), self._settings)
        stop = stop_of(chat, reply, directives, self._settings)
        try:
            await apply_pre_response_faults(request, directives, self._state, model)
        except ApiError as error:  # the status directives: answer as Anthropic would
            raise simulated_failure(error.status, model, directives.retry_after) from None
        input_tokens = estimate_prompt_tokens(chat.messages)
        headers = {"request-id": request_id()}
        if chat.stream:
            tokens_per_s = directives.tokens_per_s
            plan = AnthropicStreamPlan(
                message=message_id(),
                model=model,
                reply=reply,
                stop=stop,
                input_tokens=input_tokens,
                tokens_per_s=self._settings.tokens_per_s if tokens_per_s is None else tokens_per_s,
                fault=stream_fault(directives),
            )
            return await stream_messages(request, plan, headers)
        payload = message_payload(
            message=message_id(), model=model, reply=reply, stop=stop, input_tokens=input_tokens
        )
        if wants_echo(request):
            payload["simulator"] = echo_payload(request, body)
        return json_response(payload, headers=headers)
