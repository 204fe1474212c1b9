"""The non-streaming ``chat.completion`` object."""

from __future__ import annotations

from typing import Any

from lockgate.simulate.ids import SYSTEM_FINGERPRINT
from lockgate.simulate.reply import ChatReply
from lockgate.simulate.usage import chat_usage


def completion_payload(
    *,
    completion_id: str,
    created: int,
    model: str,
    n: int,
    reply: ChatReply,
    prompt_tokens: int,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_call is not None:
        message["tool_calls"] = [reply.tool_call.as_message_part()]
    choices = [
        {"index": index, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
        for index in range(n)
    ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": chat_usage(prompt_tokens, reply.completion_tokens * n),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
