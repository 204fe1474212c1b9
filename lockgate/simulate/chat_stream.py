"""Streaming a planned chat reply as SSE, with pacing and mid-stream faults."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from lockgate.simulate.connection import ConnectionClosed, close_after_flush, wait_for_disconnect
from lockgate.simulate.directives import Directives
from lockgate.simulate.reply import ChatReply
from lockgate.simulate.sse import DONE_EVENT, SSE_HEADERS, ChunkEncoder, error_event
from lockgate.simulate.usage import chat_usage

FaultKind = Literal["truncate", "error", "stall"]


@dataclass(frozen=True, slots=True)
class StreamFault:
    """Break the stream after ``after`` content chunks (or when content runs out)."""

    kind: FaultKind
    after: int


def stream_fault(directives: Directives) -> StreamFault | None:
    options: tuple[tuple[int | None, FaultKind], ...] = (
        (directives.truncate_after, "truncate"),
        (directives.error_after, "error"),
        (directives.stall_after, "stall"),
    )
    candidates = [(after, kind) for after, kind in options if after is not None]
    if not candidates:
        return None
    after, kind = min(candidates, key=lambda candidate: candidate[0])
    return StreamFault(kind, after)


@dataclass(frozen=True, slots=True)
class StreamPlan:
    completion_id: str
    created: int
    model: str
    n: int
    include_usage: bool
    reply: ChatReply
    prompt_tokens: int
    tokens_per_s: float
    fault: StreamFault | None


def _first_delta(reply: ChatReply) -> dict[str, Any]:
    call = reply.tool_call
    if call is None:
        return {"role": "assistant", "content": "", "refusal": None}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
        ],
        "refusal": None,
    }


def _piece_delta(reply: ChatReply, piece: str) -> dict[str, Any]:
    if reply.tool_call is None:
        return {"content": piece}
    return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


async def _break_stream(
    request: web.BaseRequest, response: web.StreamResponse, fault: StreamFault, sent: int
) -> None:
    if fault.kind == "truncate":
        await close_after_flush(request)
        raise ConnectionClosed(by_client=False)
    if fault.kind == "stall":
        await wait_for_disconnect(request)
    await response.write(error_event(f"Simulated stream error after {sent} chunks."))
    await response.write_eof()


async def stream_chat(request: web.BaseRequest, plan: StreamPlan) -> web.StreamResponse:
    """Write each chunk as soon as it is produced (no buffering), then ``[DONE]``.

    Unpaced and without faults, the chunks are produced back to back, so they go out in one
    write: the same bytes a fast provider's chunks coalesce into on the wire, at a fraction of
    the simulator's CPU (it is the upstream in the load benchmark).
    """
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    reply, n = plan.reply, plan.n
    encoder = ChunkEncoder(plan.completion_id, plan.created, plan.model, plan.include_usage)
    first = encoder.all_choices(n, _first_delta(reply))
    if plan.tokens_per_s <= 0 and plan.fault is None:
        body = [first, *(encoder.all_choices(n, _piece_delta(reply, p)) for p in reply.pieces)]
        body.append(_tail(plan, encoder))
        await response.write(b"".join(body))
        await response.write_eof()
        return response
    await response.write(first)

    pieces = reply.pieces
    fault = plan.fault
    fault_at = min(fault.after, len(pieces)) if fault is not None else -1
    interval = 1.0 / plan.tokens_per_s if plan.tokens_per_s > 0 else 0.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    for sent, piece in enumerate(pieces):
        if sent == fault_at and fault is not None:
            await _break_stream(request, response, fault, sent)
            return response
        if interval:
            delay = started + (sent + 1) * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        await response.write(encoder.all_choices(n, _piece_delta(reply, piece)))
    if fault is not None:
        await _break_stream(request, response, fault, len(pieces))
        return response

    await response.write(_tail(plan, encoder))
    await response.write_eof()
    return response


def _tail(plan: StreamPlan, encoder: ChunkEncoder) -> bytes:
    """The finish chunk, the usage chunk when asked for, and ``[DONE]``."""
    reply = plan.reply
    tail = encoder.all_choices(plan.n, {}, reply.finish_reason)
    if plan.include_usage:
        tail += encoder.usage(chat_usage(plan.prompt_tokens, reply.completion_tokens * plan.n))
    return tail + DONE_EVENT
