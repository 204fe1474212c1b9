"""Converse answers built from a planned reply: the JSON body, and the ConverseStream events.

The stream is `application/vnd.amazon.eventstream`: messageStart, contentBlockStart (a tool
call's id and name), one contentBlockDelta per text piece or input-JSON fragment,
contentBlockStop, messageStop (stopReason) and metadata (usage). Faults fire before the piece
they name, or instead of messageStop when the content runs out first; `error_after` sends a
`modelStreamErrorException` message and ends the response.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from lockgate.simulate.chat_stream import StreamFault
from lockgate.simulate.connection import ConnectionClosed, close_after_flush, wait_for_disconnect
from lockgate.simulate.eventstream import event_message, exception_message
from lockgate.simulate.reply import ChatReply

__all__ = ["ConverseAnswer", "stream_converse"]

EVENT_STREAM = "application/vnd.amazon.eventstream"
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


@dataclass(frozen=True, slots=True)
class ConverseAnswer:
    reply: ChatReply
    prompt_tokens: int
    tokens_per_s: float = 0.0
    fault: StreamFault | None = None

    @property
    def tool_use_id(self) -> str:
        call = self.reply.tool_call
        return f"tooluse_{call.id.removeprefix('call_')}" if call is not None else ""

    def usage(self) -> dict[str, int]:
        output = self.reply.completion_tokens
        return {
            "inputTokens": self.prompt_tokens,
            "outputTokens": output,
            "totalTokens": self.prompt_tokens + output,
        }

    def body(self) -> dict[str, Any]:
        call = self.reply.tool_call
        content: list[dict[str, Any]]
        if call is not None:
            use = {"toolUseId": self.tool_use_id, "name": call.name}
            content = [{"toolUse": {**use, "input": orjson.loads(call.arguments)}}]
        else:
            content = [{"text": self.reply.content or ""}]
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": STOP_REASONS[self.reply.finish_reason],
            "usage": self.usage(),
            "metrics": {"latencyMs": 1},
        }


def _delta(answer: ConverseAnswer, piece: str) -> bytes:
    delta = {"toolUse": {"input": piece}} if answer.reply.tool_call else {"text": piece}
    return event_message("contentBlockDelta", {"delta": delta, "contentBlockIndex": 0})


async def _break(
    request: web.BaseRequest, response: web.StreamResponse, fault: StreamFault, sent: int
) -> None:
    if fault.kind == "truncate":
        await close_after_flush(request)
        raise ConnectionClosed(by_client=False)
    if fault.kind == "stall":
        await wait_for_disconnect(request)
    message = f"Simulated stream error after {sent} chunks."
    await response.write(exception_message("modelStreamErrorException", message))
    await response.write_eof()


async def stream_converse(request: web.BaseRequest, answer: ConverseAnswer) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": EVENT_STREAM})
    await response.prepare(request)
    await response.write(event_message("messageStart", {"role": "assistant"}))
    call = answer.reply.tool_call
    if call is not None:
        start = {"toolUse": {"toolUseId": answer.tool_use_id, "name": call.name}}
        await response.write(
            event_message("contentBlockStart", {"start": start, "contentBlockIndex": 0})
        )
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
        await response.write(_delta(answer, piece))
    if fault is not None:
        await _break(request, response, fault, len(pieces))
        return response
    stop_reason = STOP_REASONS[answer.reply.finish_reason]
    tail = event_message("contentBlockStop", {"contentBlockIndex": 0})
    tail += event_message("messageStop", {"stopReason": stop_reason})
    tail += event_message("metadata", {"usage": answer.usage(), "metrics": {"latencyMs": 1}})
    await response.write(tail)
    await response.write_eof()
    return response
