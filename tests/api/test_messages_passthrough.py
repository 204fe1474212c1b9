"""`/v1/messages` on an Anthropic-type target: the client's body passes through untranslated, so
Anthropic-only features (`cache_control`, `thinking`) reach the provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.api.messages_gateway import KEY, gateway_yaml, received, unique
from tests.conftest import config_from_yaml, running_gateway


@pytest.fixture(scope="module")
async def gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    async with running_gateway(config_from_yaml(gateway_yaml(simulator), KEY=KEY)) as url:
        yield url


def request(question: str) -> dict[str, Any]:
    return {
        "max_tokens": 2048,
        "system": [
            {"type": "text", "text": "A long, cacheable system prompt."},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": question, "cache_control": {"type": "ephemeral"}}
                ],
            }
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }


@pytest.mark.parametrize("stream", [False, True])
async def test_body_reaches_anthropic_untouched(
    gateway_url: str, simulator: RunningSimulator, stream: bool
) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway_url, api_key="x", max_retries=0)
    question = unique("Hello")
    sent = request(question)
    if stream:
        async with client.messages.stream(model="claude", **sent) as events:
            message = await events.get_final_message()
    else:
        message = await client.messages.create(model="claude", **sent)
    assert message.content[-1].type == "text"
    seen = await received(simulator, question)
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == KEY  # the provider's key, not the client's
    assert seen["body"] == {**sent, "model": "claude-sim", **({"stream": True} if stream else {})}


async def test_bearer_token_and_anthropic_version_are_accepted(
    gateway_url: str, simulator: RunningSimulator
) -> None:
    client = anthropic.AsyncAnthropic(
        base_url=gateway_url, auth_token="client-token", max_retries=0
    )
    question = unique("Hi")
    message = await client.messages.create(
        model="claude",
        max_tokens=32,
        messages=[{"role": "user", "content": question}],
        extra_headers={"anthropic-version": "2023-06-01", "anthropic-beta": "x"},
    )
    assert message.content
    headers = (await received(simulator, question))["headers"]
    assert "authorization" not in headers
    assert headers["x-api-key"] == KEY


async def test_anthropic_only_fields_are_refused_by_translated_targets(gateway_url: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway_url, api_key="x", max_retries=0)
    extra = {"mcp_servers": [{"type": "url", "url": "https://mcp.test", "name": "m"}]}
    message = await client.messages.create(
        model="claude",
        max_tokens=32,
        messages=[{"role": "user", "content": "hi"}],
        extra_body=extra,
    )
    assert message.content
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(
            model="gpt",
            max_tokens=32,
            messages=[{"role": "user", "content": "hi"}],
            extra_body=extra,
        )
    assert "'mcp_servers'" in info.value.message
    assert "'oai'" in info.value.message
