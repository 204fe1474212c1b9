"""Token estimates for decisions made before a provider has counted (routing rules, context fit).

A documented heuristic, not a tokenizer: about four characters a token for text, and a flat
count per image, as OpenAI's low-detail image costing does. Providers' reported usage stays the
truth for accounting.
"""

from __future__ import annotations

from lockgate.schemas.chat import ChatCompletionRequest, ImagePart, TextPart

__all__ = ["estimate_input_tokens"]

CHARS_PER_TOKEN = 4
TOKENS_PER_IMAGE = 85
TOKENS_PER_MESSAGE = 4


def estimate_input_tokens(request: ChatCompletionRequest) -> int:
    chars = 0
    images = 0
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            chars += len(content)
        elif content:
            for part in content:
                if isinstance(part, TextPart):
                    chars += len(part.text)
                elif isinstance(part, ImagePart):
                    images += 1
        for call in message.tool_calls or ():
            chars += len(call.function.name) + len(call.function.arguments)
    for tool in request.tools or ():
        chars += len(tool.function.name) + len(tool.function.description or "")
        chars += len(str(tool.function.parameters or ""))
    return (
        -(-chars // CHARS_PER_TOKEN)
        + images * TOKENS_PER_IMAGE
        + TOKENS_PER_MESSAGE * len(request.messages)
    )
