"""End to end: OpenAI SDK -> gateway -> `type: cohere` provider -> the simulator's Cohere v2 API.

The simulator validates requests strictly (unknown fields, roles, content parts, tool-call ids,
`p` range, bearer auth); the echo log (`GET /sim/echoes`) shows what arrived.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.conftest import config_from_yaml, running_gateway

API_KEY = "co-secret-key-5d1e9b"
MODEL = "command-a-03-2025"
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


def gateway_yaml(root: str) -> str:
    return f"""
providers:
  - name: co
    type: cohere
    base_url: "{root}"
    api_key: "${{COHERE_API_KEY}}"
    headers: {{x-sim-echo-headers: "1"}}
models:
  - name: command
    targets: [{{provider: co, model: "{MODEL}"}}]
  - name: embed
    targets: [{{provider: co, model: embed-v4.0}}]
  - name: "co/*"
    targets: [{{provider: co, model: "*"}}]
routing: {{timeout_s: 2, stream_idle_timeout_s: 2, retries: 0, cooldown: {{after_failures: 1000}}}}
"""


@pytest.fixture(scope="module")
async def gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    config = config_from_yaml(gateway_yaml(simulator.root_url), COHERE_API_KEY=API_KEY)
    async with running_gateway(config) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0)


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:12]}]"


async def received(simulator: RunningSimulator, marker: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{simulator.root_url}/sim/echoes") as resp,
    ):
        echoes = await resp.json()
    matching = [echo for echo in echoes if marker in json.dumps(echo["body"])]
    assert len(matching) == 1, f"{len(matching)} echoes hold {marker!r}"
    return matching[0]  # type: ignore[no-any-return]


async def test_text_answer(client: openai.AsyncOpenAI, simulator: RunningSimulator) -> None:
    question = unique("Hello there")
    raw = await client.chat.completions.with_raw_response.create(
        model="command",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": question},
        ],
        max_tokens=64,
        temperature=0.2,
        top_p=1.0,
        seed=7,
    )
    completion = raw.parse()
    assert raw.headers["x-lockgate-model"] == f"co/{MODEL}"
    assert completion.model == MODEL
    assert (completion.choices[0].message.content or "").startswith("Simulated reply to: Hello")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 20
    seen = await received(simulator, question)
    assert seen["path"] == "/v2/chat"
    assert seen["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert seen["body"] == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": question},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
        "seed": 7,
        "p": 0.99,
    }


async def test_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="co/m?tokens=12",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage, ids = "", None, None, set()
    async for chunk in stream:
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


async def test_tool_call_round_trip_and_streamed_arguments(
    client: openai.AsyncOpenAI, simulator: RunningSimulator
) -> None:
    question = unique("Weather in Oslo?")
    first = await client.chat.completions.create(
        model="command",
        messages=[{"role": "user", "content": question}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
    )
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.id.startswith("get_weather_")
    assert json.loads(call.function.arguments) == {"city": "example"}  # type: ignore[union-attr]
    follow_up = unique("Thanks")
    answer = await client.chat.completions.create(
        model="command",
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
    assert body["messages"][2] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": '{"temp_c": 3}',
    }

    stream = await client.chat.completions.create(
        model="co/m?tool_call=1",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        stream=True,
    )
    arguments, names, finish = "", "", None
    async for chunk in stream:
        if chunk.choices:
            for delta in chunk.choices[0].delta.tool_calls or []:
                names += (delta.function and delta.function.name) or ""
                arguments += (delta.function and delta.function.arguments) or ""
            finish = chunk.choices[0].finish_reason or finish
    assert names == "get_weather"
    assert json.loads(arguments) == {"city": "example"}
    assert finish == "tool_calls"


async def test_json_schema(client: openai.AsyncOpenAI, simulator: RunningSimulator) -> None:
    question = unique("Give me a number")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    completion = await client.chat.completions.create(
        model="command",
        messages=[{"role": "user", "content": question}],
        response_format={"type": "json_schema", "json_schema": {"name": "num", "schema": schema}},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"n": 1}
    body = (await received(simulator, question))["body"]
    assert body["response_format"] == {"type": "json_object", "json_schema": schema}


async def test_image_parts(client: openai.AsyncOpenAI, simulator: RunningSimulator) -> None:
    question = unique("What is in this picture?")
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    completion = await client.chat.completions.create(
        model="command",
        messages=[{"role": "user", "content": [{"type": "text", "text": question}, image]}],  # type: ignore[list-item]
    )
    assert completion.choices[0].message.content
    [message] = (await received(simulator, question))["body"]["messages"]
    assert message["content"][1] == image


@pytest.mark.parametrize("encoding", ["base64", "float"])
async def test_embeddings(client: openai.AsyncOpenAI, encoding: str) -> None:
    if encoding == "base64":  # the SDK asks for base64 and decodes it
        result = await client.embeddings.create(model="embed", input=["hello", "world"])
    else:
        result = await client.embeddings.create(
            model="embed", input=["hello", "world"], encoding_format="float"
        )
    assert [len(item.embedding) for item in result.data] == [16, 16]
    norm = sum(value * value for value in result.data[0].embedding)
    assert abs(norm - 1.0) < 1e-4
    assert result.usage.prompt_tokens == 4


async def test_raw_base64_embeddings_decode_to_the_float_ones(gateway_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        answers = []
        for encoding in ("base64", "float"):
            body = {"model": "embed", "input": "hello", "encoding_format": encoding}
            async with http.post(f"{gateway_url}/v1/embeddings", json=body) as resp:
                assert resp.status == 200
                answers.append((await resp.json())["data"][0]["embedding"])
    decoded = struct.unpack("<16f", base64.b64decode(answers[0]))
    assert decoded == pytest.approx(answers[1], rel=1e-6)


@pytest.mark.parametrize(
    ("status", "error", "code", "gateway_status"),
    [
        (429, openai.RateLimitError, "upstream_rate_limited", 429),
        (503, openai.APIStatusError, "upstream_error", 502),
        (400, openai.BadRequestError, None, 400),
        (404, openai.NotFoundError, None, 404),
        (401, openai.APIStatusError, "upstream_auth_failed", 502),
    ],
)
async def test_upstream_errors(
    client: openai.AsyncOpenAI,
    status: int,
    error: type[openai.APIStatusError],
    code: str | None,
    gateway_status: int,
) -> None:
    with pytest.raises(error) as info:
        await client.chat.completions.create(
            model=f"co/m?status={status}&retry_after=5",
            messages=[{"role": "user", "content": "hi"}],
        )
    assert info.value.status_code == gateway_status
    assert info.value.response.json()["error"]["code"] == code
    assert API_KEY not in info.value.response.text
    if status == 429:
        assert info.value.response.headers["retry-after"] == "5"


async def test_error_mid_stream_raises_in_the_sdk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="co/m?tokens=10&error_after=3",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
    )
    text = ""
    with pytest.raises(openai.APIError, match="Simulated stream error"):
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert text == "Simulated reply to:"


async def test_unsupported_parameter_is_a_400(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(
            model="command", messages=[{"role": "user", "content": "hi"}], n=2
        )
    assert info.value.code == "unsupported_parameter"
