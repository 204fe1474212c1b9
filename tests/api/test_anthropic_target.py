"""End to end: OpenAI SDK -> gateway -> `type: anthropic` provider -> the simulator's /v1/messages.

The simulator validates requests as strictly as Anthropic (unknown fields, roles, tool_use /
tool_result pairing, temperature range), so a request that succeeds had Anthropic's shape; the
echo log (`GET /sim/echoes`) shows exactly what arrived.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.conftest import config_from_yaml, running_gateway

ANTHROPIC_KEY = "sk-ant-sim-provider-secret-51b7"
ANTHROPIC_FIELDS = {
    "model",
    "max_tokens",
    "system",
    "messages",
    "temperature",
    "top_p",
    "stop_sequences",
    "metadata",
    "tools",
    "tool_choice",
    "stream",
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
RATING = {
    "type": "json_schema",
    "json_schema": {
        "name": "rating",
        "schema": {
            "type": "object",
            "properties": {"score": {"type": "number"}, "label": {"type": "string"}},
            "required": ["score", "label"],
        },
    },
}


def gateway_yaml(root: str) -> str:
    return f"""
providers:
  - {{name: claude, type: anthropic, base_url: "{root}", api_key: "${{ANTHROPIC_KEY}}"}}
  - name: claude-echo
    type: anthropic
    base_url: "{root}"
    api_key: "${{ANTHROPIC_KEY}}"
    headers: {{x-sim-echo-headers: "1"}}
  - name: claude-lenient
    type: anthropic
    base_url: "{root}"
    api_key: "${{ANTHROPIC_KEY}}"
    drop_unsupported: true
    headers: {{x-sim-echo-headers: "1"}}
models:
  - name: claude
    targets: [{{provider: claude-echo, model: claude-sim}}]
  - name: lenient
    targets: [{{provider: claude-lenient, model: claude-sim}}]
  - name: "claude/*"
    targets: [{{provider: claude, model: "*"}}]
routing: {{timeout_s: 2, stream_idle_timeout_s: 2}}
"""


@pytest.fixture(scope="module")
async def gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    config = config_from_yaml(gateway_yaml(simulator.root_url), ANTHROPIC_KEY=ANTHROPIC_KEY)
    async with running_gateway(config) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0)


def unique(text: str) -> str:
    """`text` with a marker that finds this request in the simulator's echo log."""
    return f"{text} [{uuid.uuid4().hex[:12]}]"


async def received(simulator: RunningSimulator, marker: str) -> dict[str, Any]:
    """What the simulator received for the request whose body holds `marker`."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{simulator.root_url}/sim/echoes") as resp,
    ):
        echoes = await resp.json()
    matching = [echo for echo in echoes if marker in json.dumps(echo["body"])]
    assert len(matching) == 1, f"{len(matching)} echoes hold {marker!r}"
    return matching[0]  # type: ignore[no-any-return]


def assert_anthropic_shape(body: dict[str, Any]) -> None:
    assert set(body) <= ANTHROPIC_FIELDS, set(body) - ANTHROPIC_FIELDS
    assert isinstance(body["max_tokens"], int)
    for message in body["messages"]:
        assert message["role"] in ("user", "assistant")


async def test_text_answer(client: openai.AsyncOpenAI, simulator: RunningSimulator) -> None:
    question = unique("Hello there")
    raw = await client.chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "user", "content": question}]
    )
    completion = raw.parse()
    assert raw.headers["x-lockgate-model"] == "claude-echo/claude-sim"
    assert completion.object == "chat.completion"
    assert completion.id.startswith("msg_")
    assert completion.model == "claude-sim"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert (choice.message.content or "").startswith("Simulated reply to: Hello there")
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 20
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    seen = await received(simulator, question)
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert seen["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen["headers"]
    assert seen["body"] == {
        "model": "claude-sim",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": question}],
    }


async def test_system_prompt_and_multi_turn(
    client: openai.AsyncOpenAI, simulator: RunningSimulator
) -> None:
    last = unique("And the weather tomorrow?")
    completion = await client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": last},
        ],
        max_tokens=64,
    )
    assert (completion.choices[0].message.content or "").startswith(
        "Simulated reply to: And the weather tomorrow?"
    )
    body = (await received(simulator, last))["body"]
    assert_anthropic_shape(body)
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 64
    assert body["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": last},
    ]


async def test_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="claude/claude-sim?tokens=12",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage, ids = "", None, None, set()
    async for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        ids.add((chunk.id, chunk.created, chunk.model))
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert len(ids) == 1
    assert len(text.split()) == 12
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens == 12
    assert usage.prompt_tokens > 0


async def test_tool_call_and_tool_result_round_trip(
    client: openai.AsyncOpenAI, simulator: RunningSimulator
) -> None:
    question = unique("Weather in Oslo?")
    first = await client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": question}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.id.startswith("toolu_")
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "example"}  # type: ignore[union-attr]
    sent = (await received(simulator, question))["body"]
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert sent["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]  # type: ignore[index]

    follow_up = unique("Thanks")
    answer = await client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "user", "content": question},
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 3}'},
            {"role": "user", "content": follow_up},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert answer.choices[0].message.content
    body = (await received(simulator, follow_up))["body"]
    assert_anthropic_shape(body)
    assert body["messages"][1]["content"][0]["type"] == "tool_use"
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": '{"temp_c": 3}'},
            {"type": "text", "text": follow_up},
        ],
    }


async def test_streamed_tool_call_arguments_reassemble(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="claude/claude-sim?tool_call=1",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    fragments, finish = 0, None
    async for chunk in stream:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += (delta.function and delta.function.name) or ""
            call["arguments"] += (delta.function and delta.function.arguments) or ""
            fragments += 1
        finish = chunk.choices[0].finish_reason or finish
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather"
    assert calls[0]["id"].startswith("toolu_")
    assert json.loads(calls[0]["arguments"]) == {"city": "example"}
    assert fragments > 2
    assert finish == "tool_calls"


async def test_image_input(client: openai.AsyncOpenAI, simulator: RunningSimulator) -> None:
    question = unique("What is in these pictures?")
    completion = await client.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": question},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                    {"type": "image_url", "image_url": {"url": "https://img.test/cat.jpg"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content
    [message] = (await received(simulator, question))["body"]["messages"]
    assert message["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://img.test/cat.jpg"}},
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_json_schema_response_format(client: openai.AsyncOpenAI, stream: bool) -> None:
    request: dict[str, Any] = {
        "model": "claude",
        "messages": [{"role": "user", "content": "Rate this"}],
        "response_format": RATING,
    }
    if stream:
        content = ""
        async for chunk in await client.chat.completions.create(**request, stream=True):
            if chunk.choices:
                content += chunk.choices[0].delta.content or ""
                assert not chunk.choices[0].delta.tool_calls
    else:
        completion = await client.chat.completions.create(**request)
        assert completion.choices[0].finish_reason == "stop"
        assert not completion.choices[0].message.tool_calls
        content = completion.choices[0].message.content or ""
    assert json.loads(content) == {"score": 1, "label": "example"}


async def test_openai_only_fields_never_reach_anthropic(
    client: openai.AsyncOpenAI, simulator: RunningSimulator
) -> None:
    question = unique("Everything at once")
    completion = await client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": question},
        ],
        n=1,
        presence_penalty=0,
        frequency_penalty=0,
        logprobs=False,
        temperature=1.5,
        top_p=0.9,
        stop="END",
        max_completion_tokens=100,
        user="user-42",
        store=False,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="auto",
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
    )
    # With tools and JSON mode the model may call a tool or answer in JSON; the simulator, told
    # to use any tool, calls the first one.
    assert completion.choices[0].finish_reason == "tool_calls"
    body = (await received(simulator, question))["body"]
    assert_anthropic_shape(body)
    assert body["temperature"] == 1.0
    assert body["metadata"] == {"user_id": "user-42"}
    assert body["stop_sequences"] == ["END"]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


async def test_unsupported_parameter_is_400_unless_dropped(
    client: openai.AsyncOpenAI, simulator: RunningSimulator
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}], seed=7
        )
    assert info.value.code == "unsupported_parameter"
    assert info.value.param == "seed"
    assert "'claude-echo'" in info.value.message
    question = unique("hi")
    completion = await client.chat.completions.create(
        model="lenient", messages=[{"role": "user", "content": question}], seed=7, n=1
    )
    assert completion.choices[0].message.content
    assert "seed" not in (await received(simulator, question))["body"]


async def test_overloaded_upstream_is_a_retryable_5xx(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(
            model="claude/claude-sim?status=529", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 503
    assert info.value.code == "upstream_overloaded"
    assert "Overloaded" in info.value.message


async def test_bad_request_is_passed_on(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(
            model="claude/claude-sim?status=400", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.body == {
        "message": "Simulated bad request for model claude-sim.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.BadRequestError, match="unexpected `tool_use_id`"):
        await client.chat.completions.create(
            model="claude",
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "toolu_unknown", "content": "x"},
            ],
        )


async def test_error_mid_stream_raises_in_the_sdk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="claude/claude-sim?tokens=10&error_after=3",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
    )
    received_text = ""
    with pytest.raises(openai.APIError, match="Overloaded"):
        async for chunk in stream:
            if chunk.choices:
                received_text += chunk.choices[0].delta.content or ""
    assert received_text == "Simulated reply to:"


async def test_embeddings_are_a_clear_400(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="has no embeddings API"):
        await client.embeddings.create(model="claude", input="hello")
