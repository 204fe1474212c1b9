"""OpenAIAdapter's optional quirks: unsupported parameters and renames (catalogue services)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lockgate.errors import UnsupportedParameter
from lockgate.providers.openai import OpenAIAdapter


def sent(adapter: OpenAIAdapter, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(adapter.chat_request(body, "m").body)
    return result


def quirky(drop: bool = False) -> OpenAIAdapter:
    return OpenAIAdapter(
        "svc",
        "http://127.0.0.1:1/v1",
        None,
        unsupported=("logit_bias", "n"),
        renames={"max_completion_tokens": "max_tokens"},
        drop_unsupported=drop,
    )


def test_plain_adapter_forwards_everything() -> None:
    body = {"messages": [], "n": 3, "logit_bias": {"1": 2}, "max_completion_tokens": 9}
    assert sent(OpenAIAdapter("o", "http://x/v1", "k"), dict(body)) == {**body, "model": "m"}


def test_unsupported_parameter_is_refused_naming_it_and_the_provider() -> None:
    with pytest.raises(UnsupportedParameter) as info:
        sent(quirky(), {"messages": [], "n": 2})
    assert info.value.param == "n"
    assert "'svc'" in str(info.value)


def test_dropped_with_drop_unsupported_and_no_op_values_removed_silently() -> None:
    assert sent(quirky(drop=True), {"messages": [], "n": 2, "logit_bias": {"1": 2}}) == {
        "messages": [],
        "model": "m",
    }
    assert sent(quirky(), {"messages": [], "n": 1, "logit_bias": {}, "logprobs": False}) == {
        "messages": [],
        "logprobs": False,
        "model": "m",
    }


def test_rename_wins_over_the_old_name_and_null_is_dropped() -> None:
    body = sent(quirky(), {"messages": [], "max_tokens": 5, "max_completion_tokens": 7})
    assert body == {"messages": [], "max_tokens": 7, "model": "m"}
    body = sent(quirky(), {"messages": [], "max_completion_tokens": None})
    assert body == {"messages": [], "model": "m"}


def test_azure_deployment_from_a_glob_cannot_change_the_url() -> None:
    from lockgate.providers.openai import AzureOpenAIAdapter

    adapter = AzureOpenAIAdapter("az", "https://res.openai.azure.com", "k", "2024-10-21")
    request = adapter.chat_request({"messages": []}, "../../admin?x=1#frag")
    assert request.url == (
        "https://res.openai.azure.com/openai/deployments/..%2F..%2Fadmin%3Fx%3D1%23frag"
        "/chat/completions?api-version=2024-10-21"
    )
