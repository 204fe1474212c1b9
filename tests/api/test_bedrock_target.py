"""End to end: OpenAI SDK -> gateway -> `type: bedrock` provider -> the simulator's Converse API
and InvokeModel (Titan and Cohere embeddings).

The simulator validates requests strictly (unknown fields, alternating roles, toolUse/toolResult
pairing, a SigV4 Authorization header); the echo log (`GET /sim/echoes`) shows what arrived.
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

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYsecretKEY"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-multilingual-v3"
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
  - name: aws
    type: bedrock
    base_url: "{root}"
    aws:
      region: eu-central-1
      access_key_id: "${{AWS_ACCESS_KEY_ID}}"
      secret_access_key: "${{AWS_SECRET_ACCESS_KEY}}"
      session_token: "${{AWS_SESSION_TOKEN}}"
    headers: {{x-sim-echo-headers: "1"}}
models:
  - name: claude
    targets: [{{provider: aws, model: "{MODEL}"}}]
  - name: titan
    targets: [{{provider: aws, model: "{TITAN}"}}]
  - name: cohere-embed
    targets: [{{provider: aws, model: "{COHERE}"}}]
  - name: "aws/*"
    targets: [{{provider: aws, model: "*"}}]
routing: {{timeout_s: 2, stream_idle_timeout_s: 2, retries: 0, cooldown: {{after_failures: 1000}}}}
"""


@pytest.fixture(scope="module")
async def gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    config = config_from_yaml(
        gateway_yaml(simulator.root_url),
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_SESSION_TOKEN="session-token-xyz",
    )
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
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": question},
        ],
        max_tokens=64,
        temperature=0.2,
    )
    completion = raw.parse()
    assert raw.headers["x-lockgate-model"] == f"aws/{MODEL}"
    assert completion.model == MODEL
    assert (completion.choices[0].message.content or "").startswith("Simulated reply to: Hello")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 20
    seen = await received(simulator, question)
    assert seen["path"] == f"/model/{MODEL}/converse"
    assert seen["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/eu-central-1/bedrock/aws4_request" in seen["headers"]["authorization"]
    assert seen["headers"]["x-amz-security-token"] == "session-token-xyz"
    assert SECRET_KEY not in json.dumps(seen)
    assert seen["body"] == {
        "messages": [{"role": "user", "content": [{"text": question}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.2},
    }


async def test_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="aws/m?tokens=12",
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
        model="claude",
        messages=[{"role": "user", "content": question}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
    )
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.id.startswith("tooluse_")
    assert json.loads(call.function.arguments) == {"city": "example"}  # type: ignore[union-attr]
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
    assert body["messages"][2]["content"][0] == {
        "toolResult": {"toolUseId": call.id, "content": [{"text": '{"temp_c": 3}'}]}
    }

    stream = await client.chat.completions.create(
        model="aws/m?tool_call=1",
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


async def test_image_input(client: openai.AsyncOpenAI, simulator: RunningSimulator) -> None:
    question = unique("What is in this picture?")
    image = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
    completion = await client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": [{"type": "text", "text": question}, image]}],  # type: ignore[list-item]
    )
    assert completion.choices[0].message.content
    [message] = (await received(simulator, question))["body"]["messages"]
    assert message["content"][1] == {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}}
    with pytest.raises(openai.BadRequestError) as info:
        https = {"type": "image_url", "image_url": {"url": "https://img.test/cat.jpg"}}
        await client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": [https]}],  # type: ignore[list-item]
        )
    assert info.value.code == "unsupported_parameter"


@pytest.mark.parametrize(
    ("status", "error", "code", "gateway_status"),
    [
        (429, openai.RateLimitError, "upstream_rate_limited", 429),
        (503, openai.InternalServerError, "upstream_overloaded", 503),
        (400, openai.BadRequestError, None, 400),
        (404, openai.NotFoundError, "resource_not_found", 404),
        (403, openai.InternalServerError, "upstream_auth_failed", 502),
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
            model=f"aws/m?status={status}", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == gateway_status
    assert info.value.response.json()["error"]["code"] == code
    assert SECRET_KEY not in info.value.response.text


async def test_error_mid_stream_raises_in_the_sdk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="aws/m?tokens=10&error_after=3",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
    )
    text = ""
    with pytest.raises(openai.APIError, match="Simulated stream error"):
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert text == "Simulated reply to:"


def norm(vector: list[float]) -> float:
    return sum(value * value for value in vector)


def signed_for_bedrock(headers: dict[str, str]) -> None:
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/eu-central-1/bedrock/aws4_request" in headers["authorization"]
    assert headers["x-amz-security-token"] == "session-token-xyz"


@pytest.mark.parametrize("encoding", ["base64", "float"])
async def test_titan_embeddings(
    client: openai.AsyncOpenAI, simulator: RunningSimulator, encoding: str
) -> None:
    text = unique("embed me")
    if encoding == "base64":  # the SDK's default: it asks for base64 and decodes it
        raw = await client.embeddings.with_raw_response.create(model="titan", input=text)
    else:
        raw = await client.embeddings.with_raw_response.create(
            model="titan", input=[text], encoding_format="float", dimensions=256
        )
    result = raw.parse()
    assert raw.headers["x-lockgate-model"] == f"aws/{TITAN}"
    assert result.model == TITAN
    [item] = result.data
    assert (item.index, item.object) == (0, "embedding")
    assert len(item.embedding) == (1024 if encoding == "base64" else 256)
    assert abs(norm(item.embedding) - 1) < 1e-4
    assert result.usage.prompt_tokens == result.usage.total_tokens == -(-len(text) // 4)
    seen = await received(simulator, text)
    assert seen["path"] == f"/model/{TITAN}/invoke"
    signed_for_bedrock(seen["headers"])
    assert SECRET_KEY not in json.dumps(seen)
    expected: dict[str, Any] = {"inputText": text, "normalize": True}
    if encoding == "float":
        expected["dimensions"] = 256
    assert seen["body"] == expected


async def test_base64_and_float_embeddings_are_the_same_vector(client: openai.AsyncOpenAI) -> None:
    decoded = await client.embeddings.create(model="titan", input="same text")
    floats = await client.embeddings.create(
        model="titan", input="same text", encoding_format="float"
    )
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)


@pytest.mark.parametrize("encoding", ["base64", "float"])
async def test_cohere_embeddings_take_a_list(
    client: openai.AsyncOpenAI, simulator: RunningSimulator, encoding: str
) -> None:
    texts = [unique("first"), unique("second")]
    if encoding == "base64":
        result = await client.embeddings.create(model="cohere-embed", input=texts)
    else:
        result = await client.embeddings.create(
            model="cohere-embed",
            input=texts,
            encoding_format="float",
            extra_body={"input_type": "search_query"},
        )
    assert result.model == COHERE
    assert [item.index for item in result.data] == [0, 1]
    assert [len(item.embedding) for item in result.data] == [16, 16]
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens == sum(-(-len(text) // 4) for text in texts)
    seen = await received(simulator, texts[0])
    assert seen["path"] == f"/model/{COHERE}/invoke"
    signed_for_bedrock(seen["headers"])
    assert seen["body"] == {
        "texts": texts,
        "input_type": "search_document" if encoding == "base64" else "search_query",
        "embedding_types": ["float"],
    }


@pytest.mark.parametrize(
    ("model", "extra", "param", "code", "fragment"),
    [
        ("titan", {"input": ["a", "b"]}, "input", "unsupported_parameter", "one text per call"),
        ("titan", {"input": "a", "dimensions": 300}, "dimensions", "unsupported_parameter", "256"),
        ("titan", {"input": [1, 2, 3]}, "input", "unsupported_parameter", "text only"),
        ("cohere-embed", {"input": [[1, 2], [3]]}, "input", "unsupported_parameter", "text only"),
        ("cohere-embed", {"input": "a", "dimensions": 256}, "dimensions", "unsupported_parameter",
         "not supported"),
        ("claude", {"input": "a"}, "model", "unsupported_operation", "Amazon Titan"),
    ],
)  # fmt: skip
async def test_embeddings_bedrock_cannot_serve_are_400(
    client: openai.AsyncOpenAI,
    model: str,
    extra: dict[str, Any],
    param: str,
    code: str,
    fragment: str,
) -> None:
    with pytest.raises(openai.BadRequestError, match=fragment) as info:
        await client.embeddings.create(model=model, **extra)
    error = info.value.response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


@pytest.mark.parametrize(
    ("status", "error", "code", "gateway_status"),
    [
        (429, openai.RateLimitError, "upstream_rate_limited", 429),
        (503, openai.InternalServerError, "upstream_overloaded", 503),
        (400, openai.BadRequestError, None, 400),
        (403, openai.InternalServerError, "upstream_auth_failed", 502),
    ],
)
async def test_embeddings_upstream_errors(
    client: openai.AsyncOpenAI,
    status: int,
    error: type[openai.APIStatusError],
    code: str | None,
    gateway_status: int,
) -> None:
    with pytest.raises(error) as info:
        await client.embeddings.create(model=f"aws/{TITAN}?status={status}", input="hi")
    assert info.value.status_code == gateway_status
    assert info.value.response.json()["error"]["code"] == code
    assert SECRET_KEY not in info.value.response.text
