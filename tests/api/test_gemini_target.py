"""OpenAI clients served by `type: gemini` targets (the simulator speaking Gemini), end to end.

What the simulator received is read from its echo log (`GET /sim/echoes`): the gateway
translates Gemini's answer, so the `simulator` field of an echo answer never reaches the client.
Failures and embeddings are in test_gemini_target_failures.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import openai
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.api.gemini_gateway import (
    GEMINI_KEY,
    PIXEL,
    USER,
    VERTEX_TOKEN,
    WEATHER,
    gemini_gateway,
    last_echo,
)


@pytest.fixture(scope="module")
async def gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    async with gemini_gateway(simulator) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0)


async def test_text_completion(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="gchat", messages=USER)  # type: ignore[arg-type]
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == "gemini-2.0-flash"
    assert completion.choices[0].message.content.startswith(
        "Simulated reply to: Tell me about Oslo"
    )  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 20
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 20
    assert raw.headers["x-lockgate-model"] == "gem/gemini-2.0-flash"


async def test_upstream_sees_geminis_shape_and_the_key_only_in_its_header(
    client: openai.AsyncOpenAI, simulator: RunningSimulator
) -> None:
    await client.chat.completions.create(
        model="gecho",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Name a fjord."},
        ],
        temperature=0.3,
        max_tokens=50,
        seed=11,
    )
    seen = await last_echo(simulator)
    assert seen["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert seen["query"] == {}
    assert seen["headers"]["x-goog-api-key"] == GEMINI_KEY
    assert "authorization" not in seen["headers"]
    assert GEMINI_KEY not in json.dumps({k: v for k, v in seen.items() if k != "headers"})
    assert seen["body"] == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello! How can I help?"}]},
            {"role": "user", "parts": [{"text": "Name a fjord."}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.3, "seed": 11, "maxOutputTokens": 50},
    }


async def test_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gem/gemini-2.0-flash?tokens=12",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage, chunks = "", None, None, 0
    async for chunk in stream:
        chunks += 1
        assert chunk.object == "chat.completion.chunk"
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        elif chunk.usage:
            usage = chunk.usage
    assert len(text.split()) == 12
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens == 12
    assert chunks >= 13


async def test_tool_call_round_trip(
    client: openai.AsyncOpenAI, simulator: RunningSimulator
) -> None:
    first = await client.chat.completions.create(
        model="gecho",
        messages=USER,
        tools=[WEATHER],
        tool_choice="required",  # type: ignore[list-item, arg-type]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "example", "unit": "example"}  # type: ignore[union-attr]
    sent = (await last_echo(simulator))["body"]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert sent["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "unit": {"type": "STRING", "nullable": True}},
        "required": ["city", "unit"],
    }
    # The assistant message goes back as the SDK returned it (with the thought signature).
    second = await client.chat.completions.create(
        model="gecho",
        messages=[
            *USER,
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 9}'},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.choices[0].finish_reason == "stop"
    contents = (await last_echo(simulator))["body"]["contents"]
    model_part = contents[1]["parts"][0]
    assert model_part["functionCall"] == {
        "name": "get_weather",
        "args": {"city": "example", "unit": "example"},
    }
    assert model_part["thoughtSignature"]
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 9}}}],
    }


async def test_streamed_tool_call(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gchat",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    name, arguments, ids, finish = "", "", set(), None
    async for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            ids.add(call.id)
            name += (call.function and call.function.name) or ""
            arguments += (call.function and call.function.arguments) or ""
        if chunk.choices:
            finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather"
    assert json.loads(arguments)["city"] == "example"
    assert len(ids - {None}) == 1
    assert finish == "tool_calls"


async def test_image_input(client: openai.AsyncOpenAI, simulator: RunningSimulator) -> None:
    await client.chat.completions.create(
        model="gecho",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
                ],
            }
        ],
    )
    (content,) = (await last_echo(simulator))["body"]["contents"]
    assert content["parts"] == [
        {"text": "Compare these"},
        {"inlineData": {"mimeType": "image/png", "data": PIXEL}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}},
    ]


async def test_json_schema_answer(client: openai.AsyncOpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    completion = await client.chat.completions.create(
        model="gchat",
        messages=USER,  # type: ignore[arg-type]
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        },
    )
    assert json.loads(completion.choices[0].message.content or "") == {
        "city": "example",
        "population": 1,
    }


async def test_vertex_target(client: openai.AsyncOpenAI, simulator: RunningSimulator) -> None:
    completion = await client.chat.completions.create(model="vchat", messages=USER)  # type: ignore[arg-type]
    assert completion.model == "gemini-2.5-pro"
    seen = await last_echo(simulator)
    assert seen["path"] == (
        "/v1/projects/my-project/locations/europe-west4/publishers/google/models/"
        "gemini-2.5-pro:generateContent"
    )
    assert seen["headers"]["authorization"] == f"Bearer {VERTEX_TOKEN}"
    assert "x-goog-api-key" not in seen["headers"]
    result = await client.embeddings.create(model="vembed", input="fjord", encoding_format="float")
    assert len(result.data[0].embedding) == 16
    assert result.usage.prompt_tokens == 2
    assert (await last_echo(simulator))["path"].endswith("/text-embedding-005:predict")
