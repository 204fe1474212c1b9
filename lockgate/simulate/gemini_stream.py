"""Streaming a planned reply as Gemini SSE (`streamGenerateContent?alt=sse`).

Framing as Google sends it: `data: {GenerateContentResponse}` events separated by CRLF CRLF, no
end marker. One event per content piece (every candidate in each), usage totals on every event,
the last piece carrying `finishReason`; a function call arrives whole in one event. Stream
faults fire before the piece they name, or instead of the final event when the content runs
out first, so a faulted stream never carries a finishReason. `error_after` sends an in-band
`data: {"error": {...}}` event and ends the response.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
from aiohttp import web

from lockgate.simulate.chat_stream import StreamFault
from lockgate.simulate.connection import ConnectionClosed, close_after_flush, wait_for_disconnect
from lockgate.simulate.gemini_payload import FINISH_REASONS, GeminiAnswer, candidate
from lockgate.simulate.sse import SSE_HEADERS

__all__ = ["GeminiStreamPlan", "stream_generate"]

EVENT_END = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class GeminiStreamPlan:
    answer: GeminiAnswer
    tokens_per_s: float
    fault: StreamFault | None


def _event(payload: bytes) -> bytes:
    return b"data: " + payload + EVENT_END


def _error_event(message: str) -> bytes:
    error = {"error": {"code": 500, "message": message, "status": "INTERNAL"}}
    return _event(orjson.dumps(error))


async def _break(
    request: web.BaseRequest, response: web.StreamResponse, fault: StreamFault, sent: int
) -> None:
    if fault.kind == "truncate":
        await close_after_flush(request)
        raise ConnectionClosed(by_client=False)
    if fault.kind == "stall":
        await wait_for_disconnect(request)
    await response.write(_error_event(f"Simulated stream error after {sent} chunks."))
    await response.write_eof()


def _pieces(answer: GeminiAnswer) -> tuple[str, ...]:
    """Text pieces to stream; a function call is one piece."""
    reply = answer.reply
    if reply.tool_call is not None:
        return ("",)
    return reply.pieces or ("",)


async def stream_generate(request: web.BaseRequest, plan: GeminiStreamPlan) -> web.StreamResponse:
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    answer, fault = plan.answer, plan.fault
    pieces = _pieces(answer)
    whole = answer.reply.tool_call is not None
    fault_at = min(fault.after, len(pieces)) if fault is not None else -1
    interval = 1.0 / plan.tokens_per_s if plan.tokens_per_s > 0 else 0.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    last = len(pieces) - 1
    for sent, piece in enumerate(pieces):
        if sent == fault_at and fault is not None:
            await _break(request, response, fault, sent)
            return response
        if interval:
            delay = started + (sent + 1) * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        final = sent == last and fault is None
        parts = answer.final_parts(None) if whole else [{"text": piece}]
        finish = FINISH_REASONS[answer.reply.finish_reason] if final else None
        candidates = [candidate(index, parts, finish) for index in range(answer.n)]
        tokens = answer.reply.completion_tokens * answer.n if final else None
        await response.write(_event(orjson.dumps(answer.body(candidates, tokens))))
    if fault is not None:
        await _break(request, response, fault, len(pieces))
        return response
    await response.write_eof()
    return response
