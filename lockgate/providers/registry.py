"""Provider type -> adapter. The only place that knows which module speaks which protocol.

The native adapters (Anthropic, Gemini, Bedrock, Cohere, local embeddings) are imported when a
provider of their type is built, so a gateway loads only the protocols its config uses.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING

from lockgate.config.models import ProviderConfig
from lockgate.providers.base import ProviderAdapter
from lockgate.providers.catalogue import CATALOGUE, catalogue_entry
from lockgate.providers.openai import AzureOpenAIAdapter, OpenAIAdapter

if TYPE_CHECKING:
    from lockgate.cache.local_embeddings import LocalEmbedder

__all__ = ["build_adapter"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
AZURE_API_VERSION = "2024-10-21"


def _secret(provider: ProviderConfig) -> str | None:
    return provider.api_key.get_secret_value() if provider.api_key else None


def _openai(provider: ProviderConfig, base_url: str | None) -> ProviderAdapter:
    return OpenAIAdapter(
        provider.name,
        base_url or provider.base_url or OPENAI_BASE_URL,
        _secret(provider),
        provider.headers,
    )


def _azure(provider: ProviderConfig, base_url: str | None) -> ProviderAdapter:
    url = base_url or provider.base_url
    if url is None:  # config validation requires it; guard the invariant anyway
        raise ValueError(f"provider {provider.name!r}: azure needs base_url")
    return AzureOpenAIAdapter(
        provider.name,
        url,
        _secret(provider),
        provider.api_version or AZURE_API_VERSION,
        provider.headers,
    )


def _anthropic(provider: ProviderConfig, base_url: str | None) -> ProviderAdapter:
    from lockgate.providers.anthropic import ANTHROPIC_BASE_URL, ANTHROPIC_VERSION, AnthropicAdapter

    return AnthropicAdapter(
        provider.name,
        base_url or provider.base_url or ANTHROPIC_BASE_URL,
        _secret(provider),
        api_version=provider.api_version or ANTHROPIC_VERSION,
        drop_unsupported=provider.drop_unsupported,
        extra_headers=provider.headers,
    )


def _gemini(provider: ProviderConfig, base_url: str | None) -> ProviderAdapter:
    from lockgate.providers.gemini import (
        GEMINI_BASE_URL,
        GeminiAdapter,
        VertexLocation,
        vertex_base_url,
    )

    vertex = provider.vertex
    location = VertexLocation(vertex.project, vertex.location) if vertex else None
    default = vertex_base_url(vertex.location) if vertex else GEMINI_BASE_URL
    return GeminiAdapter(
        provider.name,
        base_url or provider.base_url or default,
        _secret(provider),
        vertex=location,
        extra_headers=provider.headers,
        drop_unsupported=provider.drop_unsupported,
    )


def _bedrock(provider: ProviderConfig, base_url: str | None) -> ProviderAdapter:
    from lockgate.providers.bedrock import AwsCredentials, BedrockAdapter, bedrock_base_url

    aws = provider.aws
    if aws is None:  # config validation requires it; guard the invariant anyway
        raise ValueError(f"provider {provider.name!r}: bedrock needs aws.region")
    credentials = None
    if aws.access_key_id is not None and aws.secret_access_key is not None:
        token = aws.session_token.get_secret_value() if aws.session_token else None
        credentials = AwsCredentials(
            aws.access_key_id.get_secret_value(), aws.secret_access_key.get_secret_value(), token
        )
    return BedrockAdapter(
        provider.name,
        base_url or provider.base_url or bedrock_base_url(aws.region),
        aws.region,
        credentials=credentials,
        api_key=_secret(provider),
        drop_unsupported=provider.drop_unsupported,
        extra_headers=provider.headers,
    )


def _cohere(provider: ProviderConfig, base_url: str | None) -> ProviderAdapter:
    from lockgate.providers.cohere import COHERE_BASE_URL, CohereAdapter

    return CohereAdapter(
        provider.name,
        base_url or provider.base_url or COHERE_BASE_URL,
        _secret(provider),
        drop_unsupported=provider.drop_unsupported,
        extra_headers=provider.headers,
    )


def _simulator(provider: ProviderConfig, base_url: str | None) -> ProviderAdapter:
    # The simulator speaks OpenAI's protocol; the container starts it and passes its URL.
    # It insists on a key, like the real thing; any will do.
    return OpenAIAdapter(
        provider.name, base_url or "", _secret(provider) or "simulator", provider.headers
    )


def _local_embeddings(provider: ProviderConfig, base_url: str | None) -> ProviderAdapter:
    from lockgate.providers.local import LocalEmbeddingsAdapter

    return LocalEmbeddingsAdapter(provider.name, {})


def _compatible(provider: ProviderConfig, base_url: str | None) -> ProviderAdapter:
    # One factory for every catalogue service: its entry is data, the adapter is OpenAI's.
    entry = catalogue_entry(provider.type)
    if entry is None:  # _FACTORIES maps only catalogue names here; guard the invariant anyway
        raise ValueError(f"provider {provider.name!r}: {provider.type} is not in the catalogue")
    return OpenAIAdapter(
        provider.name,
        base_url or provider.base_url or entry.base_url,
        _secret(provider),
        {**dict(entry.headers), **provider.headers},
        unsupported=entry.unsupported,
        renames=dict(entry.renames),
        drop_unsupported=provider.drop_unsupported,
    )


_FACTORIES: dict[str, Callable[[ProviderConfig, str | None], ProviderAdapter]] = {
    "openai": _openai,
    "azure": _azure,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "bedrock": _bedrock,
    "cohere": _cohere,
    "simulator": _simulator,
    "local-embeddings": _local_embeddings,
    **{entry.name: _compatible for entry in CATALOGUE},
}


def build_adapter(
    provider: ProviderConfig,
    base_url: str | None = None,
    embedders: MutableMapping[str, LocalEmbedder] | None = None,
) -> ProviderAdapter:
    """The adapter for `provider`; `base_url` overrides the configured one (in-process servers);
    `embedders`: the process's loaded local models, shared across reloads."""
    if provider.type == "local-embeddings" and embedders is not None:
        from lockgate.providers.local import LocalEmbeddingsAdapter

        return LocalEmbeddingsAdapter(provider.name, embedders)
    return _FACTORIES[provider.type](provider, base_url)
