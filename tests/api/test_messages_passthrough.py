"""`/v1/messages` on an Anthropic-type target: the client's body passes through untranslated, so
Anthropic-only features (`cache_control`, `thinking`, server tools and their blocks, Files API
sources) reach the provider; a translated target refuses them, naming where they are."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
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


def error_message(error: anthropic.APIStatusError) -> str:
    """The `error.message` of Anthropic's error body."""
    message = error.body["error"]["message"]  # type: ignore[index]
    assert isinstance(message, str)
    return message


def web_search_history(question: str) -> list[dict[str, Any]]:
    """A conversation that used Anthropic's server tools, thinking and the Files API."""
    return [
        {"role": "user", "content": question},
        {
            "role": "assistant",
            "content": [
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT"},
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_01",
                    "name": "web_search",
                    "input": {"query": "lockgate"},
                },
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "srvtoolu_01",
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": "https://lockgate.test",
                            "title": "Lockgate",
                            "encrypted_content": "EqgfCioIARgBIiQ3",
                            "page_age": None,
                        }
                    ],
                },
                {"type": "text", "text": "Lockgate is a gateway."},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this picture?"},
                {"type": "image", "source": {"type": "file", "file_id": "file_011CNha8"}},
            ],
        },
    ]


async def test_server_tool_history_reaches_anthropic_untouched(
    gateway_url: str, simulator: RunningSimulator
) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway_url, api_key="x", max_retries=0)
    question = unique("What is Lockgate?")
    sent: dict[str, Any] = {
        "max_tokens": 256,
        "messages": web_search_history(question),
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
    }
    # The simulator checks blocks against a smaller list than Anthropic's, so it refuses what the
    # real API takes; what matters here is that the gateway passed the body on, untouched.
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(model="claude", **sent)
    assert error_message(info.value).startswith("messages.1.content.1: Input tag 'server_tool_use'")
    seen = await received(simulator, question)
    assert seen["path"] == "/v1/messages"
    assert seen["body"] == {**sent, "model": "claude-sim"}


@pytest.mark.parametrize(
    ("history", "param"),
    [
        (web_search_history, "messages[1].content[1]"),
        (lambda question: web_search_history(question)[2:], "messages[0].content[1].source"),
    ],
    ids=["server_tool_use", "file_image_source"],
)
async def test_server_tool_history_is_refused_when_translated(
    gateway_url: str,
    simulator: RunningSimulator,
    history: Callable[[str], list[dict[str, Any]]],
    param: str,
) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway_url, api_key="x", max_retries=0)
    question = unique("What is Lockgate?")
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(model="gpt", max_tokens=256, messages=history(question))  # type: ignore[arg-type]
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    message = error_message(info.value)
    assert message.startswith(f"'{param}' (")
    assert "needs an Anthropic provider" in message
    assert "'oai'" in message
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{simulator.root_url}/sim/echoes") as resp,
    ):
        assert question not in json.dumps(await resp.json())  # refused before any provider call


@pytest.mark.parametrize("model", ["claude", "gpt"])
async def test_redacted_thinking_in_history(
    gateway_url: str, simulator: RunningSimulator, model: str
) -> None:
    """Passed through to Anthropic; left out, like `thinking` blocks, when translated."""
    client = anthropic.AsyncAnthropic(base_url=gateway_url, api_key="x", max_retries=0)
    question = unique("Why?")
    thought = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Think about it."},
        {"role": "assistant", "content": [thought, {"type": "text", "text": "Done."}]},
        {"role": "user", "content": question},
    ]
    message = await client.messages.create(model=model, max_tokens=64, messages=messages)  # type: ignore[arg-type]
    assert message.content
    seen = (await received(simulator, question))["body"]
    if model == "claude":
        assert seen["messages"] == messages
    else:
        assert seen["messages"][1] == {"role": "assistant", "content": "Done."}


@pytest.mark.parametrize("model", ["claude", "gpt"])
@pytest.mark.parametrize(
    ("block", "param"),
    [
        ({"type": "text", "text": 5}, "messages[0].content[0].text"),
        ({"type": "text"}, "messages[0].content[0].text"),
        ({"text": "no type"}, "messages[0].content[0].type"),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": 1}},
            "messages[0].content[0].source.data",
        ),
        (
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": []}]},
            "messages[0].content[0].content[0].text",
        ),
    ],
    ids=["text_type", "text_missing", "no_type", "image_data", "tool_result_text"],
)
async def test_known_block_with_a_bad_field_is_refused_on_every_target(
    gateway_url: str, model: str, block: dict[str, Any], param: str
) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway_url, api_key="x", max_retries=0)
    messages: list[dict[str, Any]] = [{"role": "user", "content": [block]}]
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(model=model, max_tokens=8, messages=messages)  # type: ignore[arg-type]
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert param in error_message(info.value)
