"""Chat completions through the gateway with the official openai SDK."""

from __future__ import annotations

import json

import aiohttp
import openai

from tests.api.conftest import AZURE_KEY, PROVIDER_KEY


async def test_chat_answers_with_upstream_content_and_usage(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "Hello there"}]
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-lockgate-model"] == "sim/sim-small"
    assert len(raw.headers["x-request-id"]) >= 16


async def test_caller_request_id_is_echoed(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="chat",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-request-id": "job-42.attempt-1"},
    )
    assert raw.headers["x-request-id"] == "job-42.attempt-1"


async def test_upstream_sees_target_model_key_and_untouched_extra_fields(
    client: openai.AsyncOpenAI,
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="echo",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        temperature=0.2,
        seed=7,
        logit_bias={"50256": -100},
        extra_body={"vendor_option": {"nested": [1, 2]}},
    )
    seen = json.loads(raw.text)["simulator"]
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    body = seen["body"]
    assert body["model"] == "upstream-name"
    assert body["temperature"] == 0.2
    assert body["seed"] == 7
    assert body["logit_bias"] == {"50256": -100}
    assert body["vendor_option"] == {"nested": [1, 2]}
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_azure_target_uses_deployment_path_api_version_and_api_key(
    client: openai.AsyncOpenAI,
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="azure-echo", messages=[{"role": "user", "content": "hi"}]
    )
    seen = json.loads(raw.text)["simulator"]
    assert seen["path"] == "/openai/deployments/my-deployment/chat/completions"
    assert seen["query"] == {"api-version": "2024-10-21"}
    assert seen["headers"]["api-key"] == AZURE_KEY
    assert "authorization" not in seen["headers"]
    assert raw.headers["x-lockgate-model"] == "azure-echo/my-deployment"


async def test_tool_call_round_trip(client: openai.AsyncOpenAI) -> None:
    tools = [
        {
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
    ]
    first = await client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    follow_up = await client.chat.completions.create(
        model="chat",
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 3}'},
        ],
        tools=tools,  # type: ignore[arg-type]
    )
    assert follow_up.choices[0].message.content


async def test_json_schema_response_format(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "Rate this"}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "rating",
                "schema": {
                    "type": "object",
                    "properties": {"score": {"type": "number"}, "label": {"type": "string"}},
                    "required": ["score", "label"],
                },
            },
        },
    )
    answer = json.loads(completion.choices[0].message.content or "")
    assert set(answer) >= {"score", "label"}


async def test_image_content_parts_are_accepted(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="chat",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                ],
            }
        ],
    )
    assert completion.choices[0].message.content


async def test_glob_model_passes_the_matched_name_upstream(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="sim/sim-large", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-lockgate-model"] == "sim/sim-large"
    assert raw.parse().model == "sim-large"


async def test_paths_without_v1_prefix_work(gateway_url: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gateway_url}/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        ) as response,
    ):
        assert response.status == 200
        assert (await response.json())["object"] == "chat.completion"
