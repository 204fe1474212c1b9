"""`GenerateContentResponse` bodies built from a planned reply.

Shaped like the Gemini API's answers: `candidates[].content.parts` with role `model`, the
candidate `index` left out when 0 (proto3 JSON omits default values), `finishReason`,
`usageMetadata` with per-modality details, `modelVersion` and `responseId`. A function call
reply carries a `thoughtSignature`, as Gemini 3 models attach one, so clients can be checked for
sending it back.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from lockgate.simulate.reply import ChatReply

__all__ = ["GeminiAnswer", "candidate", "response_id", "usage_metadata"]

FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
THOUGHT_SIGNATURE = base64.b64encode(b"lockgate-simulator-thought-signature").decode()


def response_id() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class GeminiAnswer:
    """What every chunk or body of one answer shares."""

    model: str
    response_id: str
    n: int
    prompt_tokens: int
    reply: ChatReply

    def body(
        self, candidates: list[dict[str, Any]], completion_tokens: int | None
    ) -> dict[str, Any]:
        return {
            "candidates": candidates,
            "usageMetadata": usage_metadata(self.prompt_tokens, completion_tokens),
            "modelVersion": self.model,
            "responseId": self.response_id,
        }

    def complete(self) -> dict[str, Any]:
        """The whole (non-streaming) answer."""
        parts = self.final_parts(self.reply.content)
        finish = FINISH_REASONS[self.reply.finish_reason]
        candidates = [candidate(index, parts, finish) for index in range(self.n)]
        return self.body(candidates, self.reply.completion_tokens * self.n)

    def final_parts(self, text: str | None) -> list[dict[str, Any]]:
        """Parts of a candidate's last piece: its text, or the function call."""
        parts: list[dict[str, Any]] = []
        if text is not None:
            parts.append({"text": text})
        call = self.reply.tool_call
        if call is not None:
            parts.append(
                {
                    "functionCall": {"name": call.name, "args": orjson.loads(call.arguments)},
                    "thoughtSignature": THOUGHT_SIGNATURE,
                }
            )
        return parts


def candidate(index: int, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish is not None:
        entry["finishReason"] = finish
    if index:
        entry["index"] = index
    return entry


def usage_metadata(prompt_tokens: int, completion_tokens: int | None) -> dict[str, Any]:
    """Running usage; `completion_tokens` None while a stream has not finished."""
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
    total = prompt_tokens
    if completion_tokens is not None:
        usage["candidatesTokenCount"] = completion_tokens
        total += completion_tokens
    usage["totalTokenCount"] = total
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    return usage
