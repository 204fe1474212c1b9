"""Provider type -> adapter. The only place that knows which module speaks which protocol."""

from __future__ import annotations

from collections.abc import Callable

from lockgate.config.models import ProviderConfig
from lockgate.providers.base import ProviderAdapter
from lockgate.providers.openai import AzureOpenAIAdapter, OpenAIAdapter

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


def _simulator(provider: ProviderConfig, base_url: str | None) -> ProviderAdapter:
    # The simulator speaks OpenAI's protocol; the container starts it and passes its URL.
    # It insists on a key, like the real thing; any will do.
    return OpenAIAdapter(
        provider.name, base_url or "", _secret(provider) or "simulator", provider.headers
    )


_FACTORIES: dict[str, Callable[[ProviderConfig, str | None], ProviderAdapter]] = {
    "openai": _openai,
    "azure": _azure,
    "simulator": _simulator,
}


def build_adapter(provider: ProviderConfig, base_url: str | None = None) -> ProviderAdapter:
    """The adapter for `provider`; `base_url` overrides the configured one (in-process servers)."""
    return _FACTORIES[provider.type](provider, base_url)
