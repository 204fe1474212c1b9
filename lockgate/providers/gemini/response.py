"""A Gemini `GenerateContentResponse` -> an OpenAI `chat.completion`.

- text parts -> `message.content` (joined; `thought: true` parts, the model's reasoning
  summaries, are left out); `functionCall` parts -> `message.tool_calls` with `call_...` ids
  (Gemini's own id when it sends one) and the arguments as a JSON string; a part's thought
  signature travels in the tool call's `extra_content.google.thought_signature`, where clients
  of Gemini's own OpenAI endpoint already keep it, so it can be sent back on the next turn;
- finishReason: STOP -> stop (tool_calls when the candidate called a function), MAX_TOKENS ->
  length, SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII and the IMAGE_ variants ->
  content_filter, anything else -> stop; a prompt blocked outright (`promptFeedback.blockReason`,
  no candidates) -> one empty choice with content_filter;
- usageMetadata -> usage: prompt_tokens = promptTokenCount + toolUsePromptTokenCount,
  completion_tokens = candidatesTokenCount + thoughtsTokenCount (OpenAI counts reasoning as
  completion), total_tokens = totalTokenCount, cachedContentTokenCount -> cached_tokens,
  thoughtsTokenCount -> reasoning_tokens.

Other part kinds (executableCode, codeExecutionResult, inline media output) are not translated.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from lockgate.errors import UpstreamServerError

__all__ = [
    "CandidateParts",
    "chat_completion",
    "completion_id",
    "decode_json",
    "finish_reason",
    "new_call_id",
    "openai_usage",
    "read_parts",
    "response_model",
]

_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED", "SPII")


def new_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


def decode_json(body: bytes, provider: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamServerError(
            f"Provider '{provider}' answered with a body that is not valid JSON"
        ) from None


@dataclass(slots=True)
class CandidateParts:
    """What one candidate (or one stream chunk of it) says."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def read_parts(candidate: Mapping[str, Any]) -> CandidateParts:
    result = CandidateParts()
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    texts: list[str] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Mapping) or part.get("thought") is True:
            continue
        text = part.get("text")
        if isinstance(text, str):
            texts.append(text)
        call = part.get("functionCall")
        if isinstance(call, Mapping):
            result.tool_calls.append(_tool_call(call, part.get("thoughtSignature")))
    result.text = "".join(texts)
    return result


def _tool_call(call: Mapping[str, Any], signature: object) -> dict[str, Any]:
    call_id = call.get("id")
    tool_call: dict[str, Any] = {
        "id": call_id if isinstance(call_id, str) and call_id else new_call_id(),
        "type": "function",
        "function": {
            "name": str(call.get("name", "")),
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }
    if isinstance(signature, str) and signature:
        tool_call["extra_content"] = {"google": {"thought_signature": signature}}
    return tool_call


def finish_reason(reason: object, called_tools: bool) -> str:
    if not isinstance(reason, str) or reason == "STOP":
        return "tool_calls" if called_tools else "stop"
    if reason == "MAX_TOKENS":
        return "length"
    if any(marker in reason for marker in _FILTERED):
        return "content_filter"
    return "tool_calls" if called_tools else "stop"


def openai_usage(metadata: object) -> dict[str, Any]:
    usage = metadata if isinstance(metadata, Mapping) else {}

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) else 0

    prompt = count("promptTokenCount") + count("toolUsePromptTokenCount")
    thoughts = count("thoughtsTokenCount")
    completion = count("candidatesTokenCount") + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": count("totalTokenCount") or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": count("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def completion_id(response: Mapping[str, Any]) -> str:
    response_id = response.get("responseId")
    if isinstance(response_id, str) and response_id:
        return f"chatcmpl-{response_id}"
    return f"chatcmpl-{secrets.token_hex(12)}"


def response_model(response: Mapping[str, Any], fallback: str) -> str:
    version = response.get("modelVersion")
    return version if isinstance(version, str) and version else fallback


def chat_completion(body: bytes, provider: str, model: str) -> bytes:
    """The `chat.completion` JSON for a Gemini answer; `model` when it names none."""
    response = decode_json(body, provider)
    if not isinstance(response, dict):
        raise UpstreamServerError(f"Provider '{provider}' answered with an unexpected body")
    candidates = response.get("candidates")
    choices = []
    for position, candidate in enumerate(candidates if isinstance(candidates, list) else []):
        parts = read_parts(candidate)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": parts.text or (None if parts.tool_calls else ""),
            "refusal": None,
        }
        if parts.tool_calls:
            message["tool_calls"] = parts.tool_calls
        choices.append(
            {
                "index": candidate.get("index", position),
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(
                    candidate.get("finishReason"), bool(parts.tool_calls)
                ),
            }
        )
    if not choices:  # the prompt itself was blocked
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": None},
                "logprobs": None,
                "finish_reason": "content_filter",
            }
        )
    return orjson.dumps(
        {
            "id": completion_id(response),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": response_model(response, model),
            "choices": choices,
            "usage": openai_usage(response.get("usageMetadata")),
        }
    )
