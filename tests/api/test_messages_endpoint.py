"""End to end: the Anthropic SDK -> `POST /v1/messages` -> OpenAI-, Gemini- and Anthropic-type
targets (the last passed through untranslated, see test_messages_passthrough.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anthropic
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.api.messages_gateway import (
    KEY,
    PIXEL,
    TARGETS,
    WEATHER,
    gateway_yaml,
    received,
    unique,
    with_directives,
)
from tests.conftest import config_from_yaml, running_gateway


@pytest.fixture(scope="module")
async def gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    async with running_gateway(config_from_yaml(gateway_yaml(simulator), KEY=KEY)) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway_url, api_key="x", max_retries=0)


@pytest.mark.parametrize("model", TARGETS)
async def test_text_answer(client: anthropic.AsyncAnthropic, model: str) -> None:
    raw = await client.messages.with_raw_response.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "Hello there"}]
    )
    message = await raw.parse()
    assert raw.headers["x-request-id"]
    assert raw.headers["x-lockgate-model"].split("/")[0] in ("oai", "gem", "ant")
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.stop_reason == "end_turn"
    [block] = message.content
    assert block.type == "text"
    assert "Hello there" in block.text
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["gpt", "gem"])
async def test_system_prompt_and_multi_turn_are_translated(
    client: anthropic.AsyncAnthropic, simulator: RunningSimulator, model: str
) -> None:
    last = unique("And tomorrow?")
    message = await client.messages.create(
        model=model,
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
            {"role": "user", "content": [{"type": "text", "text": last}]},
        ],
        stop_sequences=["END"],
        metadata={"user_id": "user-7"},
        extra_body={"temperature": 0.5, "top_k": 40},  # older SDKs' parameters
    )
    assert message.content[0].type == "text"
    body = (await received(simulator, last))["body"]
    if model == "gpt":
        assert body["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": last},
        ]
        assert body["max_tokens"] == 64
        assert body["stop"] == ["END"]
        assert body["user"] == "user-7"
        assert body["temperature"] == 0.5
        assert body["top_k"] == 40
        assert "cache_control" not in json.dumps(body)
    else:
        assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
        assert [turn["role"] for turn in body["contents"]] == ["user", "model", "user"]
        assert body["generationConfig"]["topK"] == 40


@pytest.mark.parametrize("model", TARGETS)
async def test_stream_helper(client: anthropic.AsyncAnthropic, model: str) -> None:
    kinds: list[str] = []
    async with client.messages.stream(
        model=with_directives(model, "tokens=12"),
        max_tokens=256,
        messages=[{"role": "user", "content": "Tell me a story"}],
    ) as stream:
        async for event in stream:
            kinds.append(event.type)
        message = await stream.get_final_message()
    core = [kind for kind in kinds if kind not in ("text", "ping")]
    assert core[0] == "message_start"
    assert core[1] == "content_block_start"
    assert core[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(core[2:-3]) == {"content_block_delta"}
    [block] = message.content
    assert block.type == "text"
    assert len(block.text.split()) == 12
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 12
    assert message.usage.input_tokens > 0


@pytest.mark.parametrize("model", TARGETS)
async def test_create_with_stream_true(client: anthropic.AsyncAnthropic, model: str) -> None:
    stream = await client.messages.create(
        model=with_directives(model, "tokens=5"),
        max_tokens=64,
        messages=[{"role": "user", "content": "Count"}],
        stream=True,
    )
    text, kinds = "", []
    async for event in stream:
        kinds.append(event.type)
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert len(text.split()) == 5


@pytest.mark.parametrize("model", TARGETS)
async def test_tool_use_round_trip(
    client: anthropic.AsyncAnthropic, simulator: RunningSimulator, model: str
) -> None:
    question = unique("Weather in Oslo?")
    first = await client.messages.create(
        model=model,
        max_tokens=128,
        messages=[{"role": "user", "content": question}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert first.stop_reason == "tool_use"
    [call] = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather"
    assert call.input == {"city": "example"}
    sent = (await received(simulator, question))["body"]
    if model == "gpt":
        assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
        assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}

    follow_up = unique("Thanks")
    answer = await client.messages.create(
        model=model,
        max_tokens=128,
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": '{"temp_c": 3}'},
                    {"type": "text", "text": follow_up},
                ],
            },
        ],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert answer.content[0].type == "text"
    if model == "gpt":
        body = (await received(simulator, follow_up))["body"]
        assert body["messages"][1]["tool_calls"][0]["id"] == call.id
        assert json.loads(body["messages"][1]["tool_calls"][0]["function"]["arguments"]) == {
            "city": "example"
        }
        assert body["messages"][2] == {
            "role": "tool",
            "tool_call_id": call.id,
            "content": '{"temp_c": 3}',
        }
        assert body["messages"][3] == {"role": "user", "content": follow_up}


@pytest.mark.parametrize("model", TARGETS)
async def test_streamed_tool_input_reassembles(
    client: anthropic.AsyncAnthropic, model: str
) -> None:
    fragments = 0
    async with client.messages.stream(
        model=with_directives(model, "tool_call=1"),
        max_tokens=128,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],  # type: ignore[list-item]
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                fragments += 1
        message = await stream.get_final_message()
    [call] = [block for block in message.content if block.type == "tool_use"]
    assert call.name == "get_weather"
    assert call.id
    assert call.input == {"city": "example"}
    assert fragments >= 1
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize("model", ["gpt", "gem"])
async def test_base64_image_is_translated(
    client: anthropic.AsyncAnthropic, simulator: RunningSimulator, model: str
) -> None:
    question = unique("What is in this picture?")
    message = await client.messages.create(
        model=model,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": question},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
                    },
                ],
            }
        ],
    )
    assert message.content[0].type == "text"
    body = (await received(simulator, question))["body"]
    if model == "gpt":
        assert body["messages"][0]["content"][1] == {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{PIXEL}"},
        }
    else:
        assert body["contents"][0]["parts"][1] == {
            "inlineData": {"mimeType": "image/png", "data": PIXEL}
        }
