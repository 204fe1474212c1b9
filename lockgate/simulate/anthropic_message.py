"""Anthropic's Message object for a planned reply, and its stop reason."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from random import getrandbits
from typing import Any

import orjson

from lockgate.simulate.chat_request import ChatRequest
from lockgate.simulate.directives import Directives
from lockgate.simulate.reply import ChatReply, plan_reply
from lockgate.simulate.settings import SimulatorSettings


def message_id() -> str:
    return f"msg_sim_{getrandbits(96):024x}"


def tool_use_id() -> str:
    return f"toolu_sim_{getrandbits(96):024x}"


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str
    sequence: str | None = None


def stop_of(
    request: ChatRequest, reply: ChatReply, directives: Directives, settings: SimulatorSettings
) -> Stop:
    """`stop_reason` (and the `stop_sequence` that was hit, if one was)."""
    if reply.tool_call is not None:
        return Stop("tool_use")
    if reply.finish_reason == "length":
        return Stop("max_tokens")
    if request.stop and reply.content is not None:
        # The shared planner only says "stop"; replanning without stop sequences tells which one
        # cut the text (the plan is deterministic).
        full = plan_reply(dataclasses.replace(request, stop=()), directives, settings).content
        cut = len(reply.content)
        if full is not None and full != reply.content:
            hit = next((stop for stop in request.stop if full.startswith(stop, cut)), None)
            if hit is not None:
                return Stop("stop_sequence", hit)
    return Stop("end_turn")


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def content_blocks(reply: ChatReply, call_id: str) -> list[dict[str, Any]]:
    call = reply.tool_call
    if call is not None:
        return [
            {
                "type": "tool_use",
                "id": call_id,
                "name": call.name,
                "input": orjson.loads(call.arguments),
            }
        ]
    return [{"type": "text", "text": reply.content}] if reply.content else []


def message_payload(
    *, message: str, model: str, reply: ChatReply, stop: Stop, input_tokens: int
) -> dict[str, Any]:
    return {
        "id": message,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_blocks(reply, tool_use_id()),
        "stop_reason": stop.reason,
        "stop_sequence": stop.sequence,
        "usage": usage(input_tokens, reply.completion_tokens),
    }
