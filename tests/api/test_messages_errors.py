"""`/v1/messages` errors: Anthropic's shape and statuses, so Anthropic SDKs raise the right class."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import anthropic
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.api.messages_gateway import KEY, TARGETS, gateway_yaml, with_directives
from tests.conftest import config_from_yaml, running_gateway

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
async def gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    config = config_from_yaml("server: {max_body_bytes: 4096}\n" + gateway_yaml(simulator), KEY=KEY)
    async with running_gateway(config) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway_url, api_key="x", max_retries=0)


async def test_unknown_model_is_not_found(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        await client.messages.create(model="nope", max_tokens=8, messages=USER)  # type: ignore[arg-type]
    assert info.value.body == {
        "type": "error",
        "error": {
            "type": "not_found_error",
            "message": "The model 'nope' does not exist on this gateway",
        },
    }
    assert info.value.response.headers["x-request-id"]


async def test_bad_field_is_named(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(
            model="gpt", max_tokens=8, messages=USER, extra_body={"max_tokens": "lots"}
        )
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "max_tokens" in info.value.message
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(
            model="gpt",
            max_tokens=8,
            messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}],  # type: ignore[typeddict-item]
        )
    assert "messages[0].content[0].source" in info.value.message


async def test_too_large_and_not_json(gateway_url: str, client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        await client.messages.create(
            model="gpt", max_tokens=8, messages=[{"role": "user", "content": "x" * 5000}]
        )
    assert info.value.status_code == 413
    assert info.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway_url}/v1/messages", data=b"{not json") as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("model", TARGETS)
async def test_upstream_rate_limit(client: anthropic.AsyncAnthropic, model: str) -> None:
    with pytest.raises(anthropic.RateLimitError) as info:
        await client.messages.create(
            model=with_directives(model, "status=429&retry_after=3"), max_tokens=8, messages=USER
        )
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert info.value.response.headers["retry-after"] == "3"


async def test_overloaded_anthropic_is_529(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.OverloadedError) as info:
        await client.messages.create(
            model=with_directives("claude", "status=529"), max_tokens=8, messages=USER
        )
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


@pytest.mark.parametrize("model", TARGETS)
async def test_failure_mid_stream_raises(client: anthropic.AsyncAnthropic, model: str) -> None:
    text = ""
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(
            model=with_directives(model, "tokens=40&error_after=3"), max_tokens=256, messages=USER
        ) as stream:
            async for event in stream:
                if event.type == "text":
                    text += event.text
    assert text  # content arrived before the failure
    assert info.value.body["type"] == "error"  # type: ignore[index]


@pytest.mark.parametrize("model", TARGETS)
async def test_truncated_stream_raises(client: anthropic.AsyncAnthropic, model: str) -> None:
    stream = await client.messages.create(
        model=with_directives(model, "tokens=40&truncate_after=3"),
        max_tokens=256,
        messages=USER,
        stream=True,
    )
    kinds = []
    with pytest.raises(anthropic.APIStatusError):
        async for event in stream:
            kinds.append(event.type)
    assert "message_stop" not in kinds
