"""Catalogue types in the config: names in the schema, default base URLs, required keys."""

from __future__ import annotations

import json
from typing import get_args

import pytest

from lockgate.config.loader import ConfigError, parse_config
from lockgate.config.models import ProviderConfig, ProviderType
from lockgate.providers.catalogue import CATALOGUE, CatalogueEntry, CompatibleType
from lockgate.providers.registry import build_adapter
from tests.cli.test_cli import lockgate

HOSTED = [entry for entry in CATALOGUE if entry.key_required]
LOCAL = [entry for entry in CATALOGUE if not entry.key_required]


def errors_of(text: str, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="lockgate.yaml", env=env)
    return [str(issue) for issue in info.value.issues]


def test_catalogue_names_are_the_compatible_types_and_provider_types() -> None:
    names = [entry.name for entry in CATALOGUE]
    assert names == list(get_args(CompatibleType))
    assert len(set(names)) == len(names)
    assert set(names) <= set(get_args(ProviderType))


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda entry: entry.name)
def test_default_base_url_is_applied(entry: CatalogueEntry) -> None:
    provider = ProviderConfig.model_validate({"name": "p", "type": entry.name, "api_key": "k"})
    request = build_adapter(provider).chat_request({"messages": []}, "m")
    assert request.url == f"{entry.base_url}/chat/completions"
    assert request.headers["authorization"] == "Bearer k"


def test_configured_base_url_wins() -> None:
    provider = ProviderConfig.model_validate(
        {"name": "p", "type": "ollama", "base_url": "http://gpu-box:11434/v1/"}
    )
    request = build_adapter(provider).chat_request({"messages": []}, "m")
    assert request.url == "http://gpu-box:11434/v1/chat/completions"
    assert "authorization" not in request.headers


@pytest.mark.parametrize("entry", HOSTED, ids=lambda entry: entry.name)
def test_hosted_type_without_api_key_is_an_error_with_its_line(entry: CatalogueEntry) -> None:
    text = f"providers:\n  - {{name: ok, type: openai}}\n  - name: hosted\n    type: {entry.name}\n"
    assert errors_of(text) == [
        f"lockgate.yaml:3: providers[1].api_key: provider 'hosted' of type {entry.name} "
        "needs api_key"
    ]


def test_an_empty_key_counts_as_missing() -> None:
    text = "providers:\n  - {name: g, type: groq, api_key: '${GROQ_API_KEY:-}'}\n"
    assert errors_of(text) == [
        "lockgate.yaml:2: providers[0].api_key: provider 'g' of type groq needs api_key"
    ]


def test_local_types_need_no_key() -> None:
    text = "providers:\n" + "".join(
        f"  - {{name: {entry.name}, type: {entry.name}}}\n" for entry in LOCAL
    )
    config = parse_config(text, source="lockgate.yaml", env={})
    assert [provider.type for provider in config.providers] == [entry.name for entry in LOCAL]


def test_config_schema_lists_the_catalogue_types() -> None:
    result = lockgate("config", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    types = schema["$defs"]["ProviderConfig"]["properties"]["type"]["enum"]
    assert {entry.name for entry in CATALOGUE} <= set(types)
    assert {"openai", "azure", "anthropic", "gemini"} <= set(types)
