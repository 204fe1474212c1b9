"""OpenAI-compatible services as data: one entry per `type`, read by the registry (STYLE habit 4).

Every entry speaks OpenAI's protocol through `OpenAIAdapter`, with `Authorization: Bearer
<api_key>` when a key is set. An entry holds only what differs between services: the default base
URL, whether a key is required, default headers, the request parameters the service documents it
cannot honour (refused with 400 `unsupported_parameter`, or dropped with `drop_unsupported`), and
parameter renames. Quirks are recorded only where the service's own documentation states them;
model-specific limits (a reasoning model refusing `logprobs`) are left to the upstream's answer.

This module imports nothing from the rest of Lockgate, so the config schema can use its names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["CATALOGUE", "CatalogueEntry", "CompatibleType", "catalogue_entry"]

CompatibleType = Literal[
    "mistral",
    "groq",
    "deepseek",
    "together",
    "fireworks",
    "openrouter",
    "xai",
    "perplexity",
    "ollama",
    "vllm",
    "llamacpp",
    "lmstudio",
]


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One OpenAI-compatible service."""

    name: CompatibleType
    title: str
    base_url: str
    key_required: bool
    docs: str
    unsupported: tuple[str, ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        "mistral",
        "Mistral AI",
        "https://api.mistral.ai/v1",
        key_required=True,
        docs="https://docs.mistral.ai/api/",
    ),
    CatalogueEntry(
        "groq",
        "Groq",
        "https://api.groq.com/openai/v1",
        key_required=True,
        docs="https://console.groq.com/docs/openai",
        # "will result in a 400 error if supplied"; `n` must be 1
        unsupported=("logprobs", "top_logprobs", "logit_bias", "n"),
    ),
    CatalogueEntry(
        "deepseek",
        "DeepSeek",
        "https://api.deepseek.com",
        key_required=True,
        docs="https://api-docs.deepseek.com/",
    ),
    CatalogueEntry(
        "together",
        "Together AI",
        "https://api.together.ai/v1",
        key_required=True,
        docs="https://docs.together.ai/docs/inference/openai-compatibility",
    ),
    CatalogueEntry(
        "fireworks",
        "Fireworks AI",
        "https://api.fireworks.ai/inference/v1",
        key_required=True,
        docs="https://docs.fireworks.ai/tools-sdks/openai-compatibility",
    ),
    CatalogueEntry(
        "openrouter",
        "OpenRouter",
        "https://openrouter.ai/api/v1",
        key_required=True,
        docs="https://openrouter.ai/docs/api-reference/overview",
    ),
    CatalogueEntry(
        "xai",
        "xAI",
        "https://api.x.ai/v1",
        key_required=True,
        docs="https://docs.x.ai/docs/api-reference",
    ),
    CatalogueEntry(
        "perplexity",
        "Perplexity Sonar",
        "https://api.perplexity.ai",
        key_required=True,
        docs="https://docs.perplexity.ai/docs/sonar/openai-compatibility",
    ),
    CatalogueEntry(
        "ollama",
        "Ollama",
        "http://127.0.0.1:11434/v1",
        key_required=False,
        docs="https://docs.ollama.com/api/openai-compatibility",
        # the request fields its OpenAI compatibility page lists as not supported (`user` aside:
        # it never changes the answer), and Logprobs, listed as an unsupported feature
        unsupported=("logprobs", "top_logprobs", "logit_bias", "n", "tool_choice"),
        renames=(("max_completion_tokens", "max_tokens"),),
    ),
    CatalogueEntry(
        "vllm",
        "vLLM",
        "http://127.0.0.1:8000/v1",
        key_required=False,
        docs="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
    ),
    CatalogueEntry(
        "llamacpp",
        "llama.cpp server",
        "http://127.0.0.1:8080/v1",
        key_required=False,
        docs="https://github.com/ggml-org/llama.cpp/tree/master/tools/server",
    ),
    CatalogueEntry(
        "lmstudio",
        "LM Studio",
        "http://127.0.0.1:1234/v1",
        key_required=False,
        docs="https://lmstudio.ai/docs/app/api/endpoints/openai",
    ),
)

_BY_NAME: Mapping[str, CatalogueEntry] = MappingProxyType({e.name: e for e in CATALOGUE})


def catalogue_entry(provider_type: str) -> CatalogueEntry | None:
    """The entry for a provider `type`, or None when the type is not a catalogue service."""
    return _BY_NAME.get(provider_type)
