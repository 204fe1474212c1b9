"""Streaming a planned reply as Anthropic's events, in Anthropic's order.

message_start, content_block_start, ping, content_block_delta (one per word or argument fragment),
content_block_stop, message_delta (stop reason, output usage), message_stop. Each event is
`event: <type>` plus `data: <json>`. Faults cut the stream after N deltas, as for the OpenAI format;
`error_after` sends Anthropic's in-band `event: error` (an overloaded_error, the usual one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from lockgate.simulate.anthropic_errors import OVERLOADED, error_event
from lockgate.simulate.anthropic_message import Stop, tool_use_id, usage
from lockgate.simulate.chat_stream import StreamFault
from lockgate.simulate.connection import ConnectionClosed, close_after_flush, wait_for_disconnect
from lockgate.simulate.reply import ChatReply
from lockgate.simulate.sse import SSE_HEADERS

__all__ = ["AnthropicStreamPlan", "stream_messages"]


@dataclass(frozen=True, slots=True)
class AnthropicStreamPlan:
    message: str
    model: str
    reply: ChatReply
    stop: Stop
    input_tokens: int
    tokens_per_s: float
    fault: StreamFault | None


def event(payload: dict[str, Any]) -> bytes:
    name = str(payload["type"]).encode()
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _opening(plan: AnthropicStreamPlan) -> bytes:
    call = plan.reply.tool_call
    block: dict[str, Any]
    if call is None:
        block = {"type": "text", "text": ""}
    else:
        block = {"type": "tool_use", "id": tool_use_id(), "name": call.name, "input": {}}
    start: dict[str, Any] = {
        "id": plan.message,
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage(plan.input_tokens, 1),
    }
    return (
        event({"type": "message_start", "message": start})
        + event({"type": "content_block_start", "index": 0, "content_block": block})
        + event({"type": "ping"})
    )


def _delta(reply: ChatReply, piece: str) -> bytes:
    if reply.tool_call is None:
        delta = {"type": "text_delta", "text": piece}
    else:
        delta = {"type": "input_json_delta", "partial_json": piece}
    return event({"type": "content_block_delta", "index": 0, "delta": delta})


def _closing(plan: AnthropicStreamPlan) -> bytes:
    stop = {"stop_reason": plan.stop.reason, "stop_sequence": plan.stop.sequence}
    return (
        event({"type": "content_block_stop", "index": 0})
        + event(
            {
                "type": "message_delta",
                "delta": stop,
                "usage": {"output_tokens": plan.reply.completion_tokens},
            }
        )
        + event({"type": "message_stop"})
    )


async def _break_stream(
    request: web.BaseRequest, response: web.StreamResponse, fault: StreamFault
) -> None:
    if fault.kind == "truncate":
        await close_after_flush(request)
        raise ConnectionClosed(by_client=False)
    if fault.kind == "stall":
        await wait_for_disconnect(request)
    await response.write(error_event(OVERLOADED, "Overloaded"))
    await response.write_eof()


async def stream_messages(
    request: web.BaseRequest, plan: AnthropicStreamPlan, headers: dict[str, str]
) -> web.StreamResponse:
    """Write each event as soon as it is produced (no buffering).

    Unpaced and without faults, the events go out in one write, as the OpenAI format does
    (see chat_stream.stream_chat).
    """
    response = web.StreamResponse(headers={**SSE_HEADERS, **headers})
    await response.prepare(request)
    reply, fault = plan.reply, plan.fault
    if plan.tokens_per_s <= 0 and fault is None:
        events = [_opening(plan), *(_delta(reply, p) for p in reply.pieces), _closing(plan)]
        await response.write(b"".join(events))
        await response.write_eof()
        return response
    await response.write(_opening(plan))
    pieces = reply.pieces
    fault_at = min(fault.after, len(pieces)) if fault is not None else -1
    interval = 1.0 / plan.tokens_per_s if plan.tokens_per_s > 0 else 0.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    for sent, piece in enumerate(pieces):
        if sent == fault_at and fault is not None:
            await _break_stream(request, response, fault)
            return response
        if interval:
            delay = started + (sent + 1) * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        await response.write(_delta(reply, piece))
    if fault is not None:
        await _break_stream(request, response, fault)
        return response
    await response.write(_closing(plan))
    await response.write_eof()
    return response
