"""Chat completions through the official openai SDK and raw HTTP."""

from __future__ import annotations

import json

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from lockgate.simulate.server import RunningSimulator
from tests.simulate.sim_helpers import AUTH, USER_MESSAGES, chat_body, parse_sse, post_json

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "metric": {"type": "boolean"},
                "note": {"type": "string"},
            },
            "required": ["city", "days", "metric"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
            "required": ["zone"],
        },
    },
}


async def test_non_stream_shape(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(model="sim-small", messages=USER_MESSAGES)
    assert result.id.startswith("chatcmpl-sim-")
    assert result.object == "chat.completion"
    assert result.model == "sim-small"
    assert result.system_fingerprint
    assert result.created > 1_600_000_000
    [choice] = result.choices
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.logprobs is None
    assert choice.message.role == "assistant"
    assert choice.message.refusal is None
    content = choice.message.content
    assert content is not None
    assert content.startswith("Simulated reply to: What is the capital")
    assert len(content.split(" ")) == 20
    usage = result.usage
    assert usage is not None
    assert usage.completion_tokens == 20
    # 30 characters -> ceil(30 / 4) = 8, plus 3 for the one message.
    assert usage.prompt_tokens == 11
    assert usage.total_tokens == 31
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


async def test_reply_is_deterministic(client: openai.AsyncOpenAI) -> None:
    first = await client.chat.completions.create(model="sim-small", messages=USER_MESSAGES)
    second = await client.chat.completions.create(model="sim-small", messages=USER_MESSAGES)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.id != second.id


async def test_raw_body_validates_as_sdk_type(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    status, headers, body = await post_json(http, f"{sim.base_url}/chat/completions", chat_body())
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    ChatCompletion.model_validate(body, strict=False)
    assert set(body) >= {"id", "object", "created", "model", "choices", "usage"}
    assert body["choices"][0]["message"]["refusal"] is None


async def test_stream_chunks_and_done(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    async with http.post(
        f"{sim.base_url}/chat/completions", json=chat_body(stream=True), headers=AUTH
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
        payloads = parse_sse(await resp.text())
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert chunk["object"] == "chat.completion.chunk"
        assert "usage" not in chunk
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    words = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert len(words) == 20
    assert words[0] == "Simulated"
    assert all(word.startswith(" ") for word in words[1:])
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }


async def test_stream_via_sdk_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim-small",
        messages=USER_MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    plain = await client.chat.completions.create(model="sim-small", messages=USER_MESSAGES)
    assert text == plain.choices[0].message.content
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 20
    assert last.usage.total_tokens == last.usage.prompt_tokens + 20
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_raw_stream_usage_null_on_earlier_chunks(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    async with http.post(f"{sim.base_url}/chat/completions", json=body, headers=AUTH) as resp:
        payloads = parse_sse(await resp.text())
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 20


async def test_n_choices(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(model="sim-small", messages=USER_MESSAGES, n=3)
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert result.usage is not None
    assert result.usage.completion_tokens == 60
    stream = await client.chat.completions.create(
        model="sim-small", messages=USER_MESSAGES, n=2, stream=True
    )
    texts = {0: "", 1: ""}
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts[0] == texts[1] == result.choices[0].message.content


async def test_max_tokens_caps_with_length(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(
        model="sim-small", messages=USER_MESSAGES, max_tokens=5
    )
    choice = result.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == "Simulated reply to: What is"
    assert result.usage is not None
    assert result.usage.completion_tokens == 5
    capped = await client.chat.completions.create(
        model="sim-small", messages=USER_MESSAGES, max_completion_tokens=3
    )
    assert capped.choices[0].message.content == "Simulated reply to:"
    assert capped.choices[0].finish_reason == "length"


async def test_stop_sequence(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(
        model="sim-small", messages=USER_MESSAGES, stop=["capital"]
    )
    assert result.choices[0].message.content == "Simulated reply to: What is the "
    assert result.choices[0].finish_reason == "stop"


async def test_tokens_and_content_directives(client: openai.AsyncOpenAI) -> None:
    short = await client.chat.completions.create(model="sim-small?tokens=4", messages=USER_MESSAGES)
    assert short.choices[0].message.content == "Simulated reply to: What"
    assert short.model == "sim-small"
    stream = await client.chat.completions.create(
        model="sim-small",
        messages=USER_MESSAGES,
        stream=True,
        extra_body={"simulate": {"content": "Paris  is nice."}},
    )
    pieces = [c.choices[0].delta.content async for c in stream if c.choices]
    assert pieces == ["", "Paris", " ", " is", " nice.", None]


async def test_image_parts_accepted(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(
        model="sim-large",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ],
    )
    assert result.choices[0].message.content is not None
    assert result.choices[0].message.content.startswith("Simulated reply to: Describe this")
    assert result.usage is not None
    # ceil(13 / 4) = 4 text tokens + 3 per message + 85 for the image.
    assert result.usage.prompt_tokens == 92


async def test_tool_call_non_stream(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(
        model="sim-small?tool_call=1", messages=USER_MESSAGES, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.id.startswith("call_")
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "example", "days": 1, "metric": True}


async def test_tool_choice_names_function(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(
        model="sim-small",
        messages=USER_MESSAGES,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    [call] = result.choices[0].message.tool_calls or []
    assert call.function.name == "get_time"
    assert json.loads(call.function.arguments) == {"zone": "UTC"}


async def test_tools_without_directive_answer_text(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(
        model="sim-small", messages=USER_MESSAGES, tools=[WEATHER_TOOL]
    )
    assert result.choices[0].finish_reason == "stop"
    assert result.choices[0].message.tool_calls is None
    none = await client.chat.completions.create(
        model="sim-small?tool_call=1",
        messages=USER_MESSAGES,
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    assert none.choices[0].message.tool_calls is None


async def test_tool_call_stream(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim-small",
        messages=USER_MESSAGES,
        tools=[WEATHER_TOOL, TIME_TOOL],
        stream=True,
        extra_headers={"x-simulate": "tool_call=get_weather"},
    )
    chunks = [chunk async for chunk in stream]
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    [head] = first.tool_calls or []
    assert head.index == 0
    assert head.id is not None
    assert head.id.startswith("call_")
    assert head.type == "function"
    assert head.function is not None
    assert head.function.name == "get_weather"
    assert head.function.arguments == ""
    fragments = []
    for chunk in chunks[1:-1]:
        [part] = chunk.choices[0].delta.tool_calls or []
        assert part.index == 0
        assert part.id is None
        assert part.function is not None
        fragments.append(part.function.arguments or "")
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"city": "example", "days": 1, "metric": True}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_json_object_mode(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(
        model="sim-small", messages=USER_MESSAGES, response_format={"type": "json_object"}
    )
    content = result.choices[0].message.content
    assert content is not None
    parsed = json.loads(content)
    assert isinstance(parsed, dict)
    assert parsed["reply"].startswith("Simulated reply to:")


async def test_json_schema_mode_streamed(client: openai.AsyncOpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "population": {"type": "integer"},
            "coastal": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "mayor": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
            },
        },
        "required": ["city", "population", "coastal", "tags", "mayor"],
        "additionalProperties": False,
    }
    stream = await client.chat.completions.create(
        model="sim-small",
        messages=USER_MESSAGES,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        },
        stream=True,
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert json.loads(text) == {
        "city": "example",
        "population": 1,
        "coastal": True,
        "tags": ["example"],
        "mayor": {"name": "example"},
    }


async def test_echo_headers(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    body = chat_body(temperature=0.2)
    headers = {**AUTH, "x-sim-echo-headers": "1", "X-Custom-Thing": "abc"}
    status, _, result = await post_json(
        http, f"{sim.base_url}/chat/completions?trace=1", body, headers
    )
    assert status == 200
    echo = result["simulator"]
    assert echo["headers"]["authorization"] == "Bearer test-key"
    assert echo["headers"]["x-custom-thing"] == "abc"
    assert echo["path"] == "/v1/chat/completions"
    assert echo["query"] == {"trace": "1"}
    assert echo["body"] == body
    _, _, plain = await post_json(http, f"{sim.base_url}/chat/completions", body)
    assert "simulator" not in plain


async def test_azure_deployment_path(sim: RunningSimulator) -> None:
    azure = openai.AsyncAzureOpenAI(
        azure_endpoint=sim.root_url, api_key="azure-key", api_version="2024-10-21", max_retries=0
    )
    try:
        raw = await azure.chat.completions.with_raw_response.create(
            model="my-deployment",
            messages=USER_MESSAGES,
            extra_headers={"x-sim-echo-headers": "1"},
        )
        echo = json.loads(raw.http_response.text)["simulator"]
        result = raw.parse()
        assert result.model == "my-deployment"
        assert echo["path"] == "/openai/deployments/my-deployment/chat/completions"
        assert echo["query"] == {"api-version": "2024-10-21"}
        assert echo["headers"]["api-key"] == "azure-key"
        stream = await azure.chat.completions.create(
            model="my-deployment", messages=USER_MESSAGES, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == result.choices[0].message.content
        embedded = await azure.embeddings.create(model="embed-deployment", input="hello")
        assert embedded.model == "embed-deployment"
        assert len(embedded.data[0].embedding) == 16
    finally:
        await azure.close()


async def test_missing_key_is_401(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    for path in ("/chat/completions", "/embeddings"):
        status, _, body = await post_json(http, f"{sim.base_url}{path}", chat_body(), headers={})
        assert status == 401
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert "API key" in body["error"]["message"]
    async with http.get(f"{sim.base_url}/models") as resp:
        assert resp.status == 401
    status, _, _ = await post_json(
        http, f"{sim.base_url}/chat/completions", chat_body(), headers={"api-key": "k"}
    )
    assert status == 200


async def test_malformed_json_is_400(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    async with http.post(
        f"{sim.base_url}/chat/completions", data=b"{not json", headers=AUTH
    ) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert "JSON" in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": USER_MESSAGES}, "model"),
        ({"model": "sim-small"}, "messages"),
        ({"model": "sim-small", "messages": []}, "messages"),
        ({"model": "sim-small", "messages": USER_MESSAGES, "n": 0}, "n"),
        ({"model": "sim-small", "messages": USER_MESSAGES, "stop": 3}, "stop"),
    ],
)
async def test_invalid_requests_name_param(
    http: aiohttp.ClientSession, sim: RunningSimulator, body: dict[str, object], param: str
) -> None:
    status, _, result = await post_json(http, f"{sim.base_url}/chat/completions", body)
    assert status == 400
    assert result["error"]["param"] == param
    assert param in result["error"]["message"]


async def test_sdk_raises_bad_request(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="sim-small", messages=[])
    assert caught.value.param == "messages"


async def test_unknown_route_is_openai_404(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    status, _, body = await post_json(http, f"{sim.base_url}/nope", {})
    assert status == 404
    assert body["error"]["message"] == "Invalid URL (POST /v1/nope)"
