"""Cohere v2 chat answers built from a planned reply: the JSON body, and the SSE stream.

The stream sends Cohere's events, each as `event: <type>` plus `data: <json>`: message-start,
then content-start, one content-delta per text piece and content-end, or tool-plan-delta,
tool-call-start, one tool-call-delta per argument fragment and tool-call-end; then message-end
with finish_reason and usage. Faults fire before the piece they name, or instead of message-end
when the content runs out first; `error_after` sends a message-end with finish_reason ERROR and
an `error` message, as Cohere reports a failed generation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from lockgate.simulate.chat_stream import StreamFault
from lockgate.simulate.connection import ConnectionClosed, close_after_flush, wait_for_disconnect
from lockgate.simulate.reply import ChatReply
from lockgate.simulate.sse import SSE_HEADERS

__all__ = ["CohereAnswer", "stream_cohere"]

FINISH_REASONS = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}
TOOL_PLAN = "I will call the tool."


def event(kind: str, payload: dict[str, Any]) -> bytes:
    data = orjson.dumps({"type": kind, **payload})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


@dataclass(frozen=True, slots=True)
class CohereAnswer:
    reply: ChatReply
    prompt_tokens: int
    response_id: str
    tokens_per_s: float = 0.0
    fault: StreamFault | None = None

    @property
    def tool_call_id(self) -> str:
        call = self.reply.tool_call
        return f"{call.name}_{call.id.removeprefix('call_')[:12]}" if call is not None else ""

    def usage(self) -> dict[str, Any]:
        tokens = {"input_tokens": self.prompt_tokens, "output_tokens": self.reply.completion_tokens}
        return {"billed_units": dict(tokens), "tokens": tokens}

    @property
    def finish_reason(self) -> str:
        return FINISH_REASONS[self.reply.finish_reason]

    def body(self) -> dict[str, Any]:
        call = self.reply.tool_call
        message: dict[str, Any] = {"role": "assistant"}
        if call is not None:
            message["tool_plan"] = TOOL_PLAN
            function = {"name": call.name, "arguments": call.arguments}
            call_id = self.tool_call_id
            message["tool_calls"] = [{"id": call_id, "type": "function", "function": function}]
        else:
            message["content"] = [{"type": "text", "text": self.reply.content or ""}]
        return {
            "id": self.response_id,
            "finish_reason": self.finish_reason,
            "message": message,
            "usage": self.usage(),
        }


def _head(answer: CohereAnswer) -> bytes:
    start = {"message": {"role": "assistant"}}
    head = event("message-start", {"id": answer.response_id, "delta": start})
    call = answer.reply.tool_call
    if call is None:
        content = {"message": {"content": {"type": "text", "text": ""}}}
        return head + event("content-start", {"index": 0, "delta": content})
    head += event("tool-plan-delta", {"delta": {"message": {"tool_plan": TOOL_PLAN}}})
    function = {"name": call.name, "arguments": ""}
    tool_call = {"id": answer.tool_call_id, "type": "function", "function": function}
    return head + event(
        "tool-call-start", {"index": 0, "delta": {"message": {"tool_calls": tool_call}}}
    )


def _piece(answer: CohereAnswer, piece: str) -> bytes:
    if answer.reply.tool_call is None:
        content = {"message": {"content": {"text": piece}}}
        return event("content-delta", {"index": 0, "delta": content})
    calls = {"message": {"tool_calls": {"function": {"arguments": piece}}}}
    return event("tool-call-delta", {"index": 0, "delta": calls})


def _tail(answer: CohereAnswer) -> bytes:
    kind = "content-end" if answer.reply.tool_call is None else "tool-call-end"
    end = {"finish_reason": answer.finish_reason, "usage": answer.usage()}
    return event(kind, {"index": 0}) + event("message-end", {"id": None, "delta": end})


async def _break(
    request: web.BaseRequest, response: web.StreamResponse, fault: StreamFault, sent: int
) -> None:
    if fault.kind == "truncate":
        await close_after_flush(request)
        raise ConnectionClosed(by_client=False)
    if fault.kind == "stall":
        await wait_for_disconnect(request)
    failed = {"finish_reason": "ERROR", "error": f"Simulated stream error after {sent} chunks."}
    await response.write(event("message-end", {"id": None, "delta": failed}))
    await response.write_eof()


async def stream_cohere(request: web.BaseRequest, answer: CohereAnswer) -> web.StreamResponse:
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    await response.write(_head(answer))
    pieces, fault = answer.reply.pieces, answer.fault
    fault_at = min(fault.after, len(pieces)) if fault is not None else -1
    interval = 1.0 / answer.tokens_per_s if answer.tokens_per_s > 0 else 0.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    for sent, piece in enumerate(pieces):
        if sent == fault_at and fault is not None:
            await _break(request, response, fault, sent)
            return response
        if interval:
            delay = started + (sent + 1) * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        await response.write(_piece(answer, piece))
    if fault is not None:
        await _break(request, response, fault, len(pieces))
        return response
    await response.write(_tail(answer))
    await response.write_eof()
    return response
