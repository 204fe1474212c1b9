"""Anthropic's Messages API behind the OpenAI-shaped canonical form."""

from lockgate.providers.anthropic.adapter import (
    ANTHROPIC_BASE_URL,
    ANTHROPIC_VERSION,
    AnthropicAdapter,
)
from lockgate.providers.anthropic.stream import AnthropicStreamParser

__all__ = ["ANTHROPIC_BASE_URL", "ANTHROPIC_VERSION", "AnthropicAdapter", "AnthropicStreamParser"]
