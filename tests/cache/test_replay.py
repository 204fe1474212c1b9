"""Replayed streams, read by the official openai and anthropic SDKs' own stream parsers.

A tiny loopback server answers any request with the replayed events (`text/event-stream`); the
SDKs assemble them and the result must be the cached body again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp import web
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from lockgate.cache.replay import MAX_PIECES, anthropic_stream, openai_stream, split_text
from lockgate.simulate.server import RunningSimulator

USER: Any = [{"role": "user", "content": "What is the capital of France?"}]  # for both SDKs
LONG_TEXT = " ".join(f"word{i}" for i in range(20_000)) + " — done ✓"


def completion(*choices: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-cached1",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {"index": index, "logprobs": None, **choice} for index, choice in enumerate(choices)
        ],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 42,
            "total_tokens": 61,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_cached",
        **extra,
    }


def text_choice(text: str, finish_reason: str = "stop") -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text,
        "refusal": None,
        "annotations": [],
    }
    return {"message": message, "finish_reason": finish_reason}


def call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    encoded = orjson.dumps(arguments).decode()
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": encoded}}


def tools_choice(*calls: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": None, "tool_calls": list(calls)}
    return {"message": message, "finish_reason": "tool_calls"}


WEATHER_CALL = call("call_w1", "get_weather", {"city": "Paris", "days": 3, "note": "metric " * 20})
TIME_CALL = call("call_t2", "get_time", {"zone": "CET"})
OPENAI_BODIES: dict[str, dict[str, Any]] = {
    "text": completion(text_choice("The capital of France is Paris, a city on the Seine.")),
    "empty": completion(text_choice("")),
    "unicode": completion(text_choice("Paris — «la Ville Lumière» 🗼, 巴黎是法国的首都。" * 5)),
    "long": completion(text_choice(LONG_TEXT, "length")),
    "tool_calls": completion(tools_choice(WEATHER_CALL, TIME_CALL)),
    "text_and_tool": completion(tools_choice(TIME_CALL, content="Let me check the time.")),
    "refusal": completion(
        {
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": "I'm sorry, I cannot help with that request.",
            },
            "finish_reason": "stop",
        }
    ),
    "n2": completion(
        text_choice("First answer, with several words in it to split."),
        tools_choice(WEATHER_CALL),
        text_choice("Third and shortest."),
    ),
    "no_fingerprint": {
        key: value
        for key, value in completion(text_choice("Hi.")).items()
        if key not in ("system_fingerprint", "service_tier")
    },
}


def message(*content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "msg_cached1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": list(content),
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 25,
            "cache_creation_input_tokens": 7,
            "cache_read_input_tokens": 100,
            "cache_creation": {"ephemeral_5m_input_tokens": 7, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 57,
            "service_tier": "standard",
        },
        **extra,
    }


def text_block(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": text, **extra}


def tool_block(tool_id: str, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


CITATION = {
    "type": "char_location",
    "cited_text": "Paris is the capital of France.",
    "document_index": 0,
    "document_title": "Atlas",
    "start_char_index": 0,
    "end_char_index": 31,
}
ANTHROPIC_BODIES: dict[str, dict[str, Any]] = {
    "text": message(text_block("The capital of France is Paris, a city on the Seine.")),
    "long": message(text_block(LONG_TEXT), stop_reason="max_tokens"),
    "stop_sequence": message(
        text_block("Counting: one, two, three"), stop_reason="stop_sequence", stop_sequence="four"
    ),
    "tool_use": message(
        text_block("I'll look that up."),
        tool_block("toolu_01", "get_weather", {"city": "Paris", "days": [1, 2], "note": "x" * 90}),
        tool_block("toolu_02", "get_time", {}),
        stop_reason="tool_use",
    ),
    "thinking": message(
        {
            "type": "thinking",
            "thinking": "The user asks about France. Its capital is Paris, so I answer that.",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        },
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT"},
        text_block("Paris."),
    ),
    "citations": message(text_block("Paris is the capital.", citations=[CITATION])),
    "empty": message(),
}


class ReplayServer:
    """Answers every POST with `events`, written one by one as a provider would."""

    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in self.events:
            await response.write(event)
        await response.write_eof()
        return response


@pytest.fixture(scope="module")
async def replay_server() -> AsyncIterator[ReplayServer]:
    server = ReplayServer()
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{site.port}"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
async def gpt(replay_server: ReplayServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{replay_server.url}/v1", api_key="x", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def claude(replay_server: ReplayServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=replay_server.url, api_key="x", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


async def sdk_completion(gpt: openai.AsyncOpenAI, include_usage: bool) -> Any:
    """The completion the SDK's own stream accumulator builds from the replayed chunks.

    Its snapshot, not `get_final_completion()`: that one refuses `finish_reason: "length"`.
    """
    async with gpt.chat.completions.stream(
        model="gpt-4o", messages=USER, stream_options={"include_usage": include_usage}
    ) as stream:
        async for _ in stream:
            pass
        return stream.current_completion_snapshot


def openai_view(completion: Any) -> dict[str, Any]:
    """What must survive a replay: everything but logprobs and annotations."""
    return {
        "id": completion.id,
        "created": completion.created,
        "model": completion.model,
        "system_fingerprint": completion.system_fingerprint,
        "usage": completion.usage.model_dump() if completion.usage else None,
        "choices": [
            {
                "index": choice.index,
                "finish_reason": choice.finish_reason,
                "content": choice.message.content,
                "refusal": choice.message.refusal,
                "tool_calls": [
                    (tool.id, tool.type, tool.function.name, tool.function.arguments)
                    for tool in choice.message.tool_calls or ()
                    if tool.type == "function"
                ],
            }
            for choice in completion.choices
        ],
    }


def anthropic_view(final: Message) -> dict[str, Any]:
    content = []
    for block in final.content:
        data = block.model_dump(exclude_none=True)
        data.pop("parsed_output", None)  # the SDK's structured-output helper, not wire data
        content.append(data)
    return {
        "id": final.id,
        "model": final.model,
        "content": content,
        "stop_reason": final.stop_reason,
        "stop_sequence": final.stop_sequence,
        "usage": final.usage.model_dump(),
    }


@pytest.mark.parametrize("name", sorted(OPENAI_BODIES))
@pytest.mark.parametrize("include_usage", [True, False])
async def test_openai_sdk_assembles_the_cached_answer(
    replay_server: ReplayServer, gpt: openai.AsyncOpenAI, name: str, include_usage: bool
) -> None:
    body = OPENAI_BODIES[name]
    replay_server.events = openai_stream(orjson.dumps(body), include_usage)
    final = await sdk_completion(gpt, include_usage)
    expected = openai_view(ChatCompletion.model_validate(body))
    if not include_usage:
        expected["usage"] = None
    assert openai_view(final) == expected


async def chunks_of(gpt: openai.AsyncOpenAI, include_usage: bool) -> list[ChatCompletionChunk]:
    stream = await gpt.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    return [chunk async for chunk in stream]


async def test_openai_chunks_are_shaped_like_openais(
    replay_server: ReplayServer, gpt: openai.AsyncOpenAI
) -> None:
    body = OPENAI_BODIES["n2"]
    replay_server.events = openai_stream(orjson.dumps(body), include_usage=True)
    chunks = await chunks_of(gpt, include_usage=True)

    heads = {(c.id, c.created, c.model, c.system_fingerprint, c.service_tier) for c in chunks}
    assert heads == {
        ("chatcmpl-cached1", 1_760_000_000, "gpt-4o-2024-08-06", "fp_cached", "default")
    }
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    *streamed, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens == 61
    assert all(chunk.usage is None and len(chunk.choices) == 1 for chunk in streamed)
    assert all("usage" in chunk.model_fields_set for chunk in streamed)  # present, as null

    by_choice: dict[int, list[Any]] = {}
    for chunk in streamed:
        by_choice.setdefault(chunk.choices[0].index, []).append(chunk.choices[0])
    assert sorted(by_choice) == [0, 1, 2]
    first_seen = [chunk.choices[0].index for chunk in streamed[:3]]
    assert first_seen == [0, 1, 2]  # every choice opens in index order

    text = by_choice[0]
    assert text[0].delta.model_dump(exclude_unset=True) == {
        "role": "assistant",
        "content": "",
        "refusal": None,
    }
    assert len(text) > 3  # several content chunks: the client sees a stream
    assert all(set(c.delta.model_dump(exclude_unset=True)) == {"content"} for c in text[1:-1])
    assert text[-1].delta.model_dump(exclude_unset=True) == {}
    assert [c.finish_reason for c in text] == [None] * (len(text) - 1) + ["stop"]

    tool = by_choice[1]
    assert tool[0].delta.model_dump(exclude_unset=True) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": "call_w1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ],
        "refusal": None,
    }
    fragments = tool[1:-1]
    assert len(fragments) > 1
    for chunk in fragments:
        [fragment] = chunk.delta.tool_calls
        assert fragment.model_dump(exclude_unset=True).keys() == {"index", "function"}
        assert fragment.function.model_dump(exclude_unset=True).keys() == {"arguments"}
    assert tool[-1].finish_reason == "tool_calls"


async def test_openai_later_tool_calls_open_with_their_own_chunk(
    replay_server: ReplayServer, gpt: openai.AsyncOpenAI
) -> None:
    replay_server.events = openai_stream(orjson.dumps(OPENAI_BODIES["tool_calls"]), False)
    chunks = await chunks_of(gpt, include_usage=False)
    assert all("usage" not in chunk.model_fields_set for chunk in chunks)
    openings = [
        call.model_dump(exclude_unset=True)
        for chunk in chunks
        for call in chunk.choices[0].delta.tool_calls or ()
        if call.id is not None
    ]
    assert [(c["index"], c["id"], c["function"]) for c in openings] == [
        (0, "call_w1", {"name": "get_weather", "arguments": ""}),
        (1, "call_t2", {"name": "get_time", "arguments": ""}),
    ]


async def test_openai_refusal_opens_as_openai_does(
    replay_server: ReplayServer, gpt: openai.AsyncOpenAI
) -> None:
    replay_server.events = openai_stream(orjson.dumps(OPENAI_BODIES["refusal"]), False)
    chunks = await chunks_of(gpt, include_usage=False)
    assert chunks[0].choices[0].delta.model_dump(exclude_unset=True) == {
        "role": "assistant",
        "content": None,
        "refusal": "",
    }
    pieces = [chunk.choices[0].delta.refusal for chunk in chunks[1:-1]]
    assert "".join(p or "" for p in pieces) == "I'm sorry, I cannot help with that request."


async def test_long_answers_stream_in_a_bounded_number_of_events() -> None:
    openai_events = openai_stream(orjson.dumps(OPENAI_BODIES["long"]), include_usage=True)
    # role chunk + pieces + finish chunk + usage chunk + [DONE]
    assert len(openai_events) <= MAX_PIECES + 4
    anthropic_events = anthropic_stream(orjson.dumps(ANTHROPIC_BODIES["long"]))
    # message_start, block start, ping, pieces, block stop, message_delta, message_stop
    assert len(anthropic_events) <= MAX_PIECES + 6


@pytest.mark.parametrize(
    "text", ["", "one", "a few words here", LONG_TEXT, "x" * 5000, "🗼" * 3000, "a  b " * 999]
)
def test_split_text_concatenates_back_and_is_bounded(text: str) -> None:
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert len(pieces) <= MAX_PIECES
    assert all(pieces)


@pytest.mark.parametrize("name", sorted(ANTHROPIC_BODIES))
async def test_anthropic_sdk_assembles_the_cached_answer(
    replay_server: ReplayServer, claude: anthropic.AsyncAnthropic, name: str
) -> None:
    body = ANTHROPIC_BODIES[name]
    replay_server.events = anthropic_stream(orjson.dumps(body))
    async with claude.messages.stream(
        model="claude-test",
        max_tokens=1024,
        messages=USER,
    ) as stream:
        final = await stream.get_final_message()
    assert anthropic_view(final) == anthropic_view(Message.model_validate(body))


async def test_anthropic_events_are_shaped_like_anthropics(
    replay_server: ReplayServer, claude: anthropic.AsyncAnthropic
) -> None:
    replay_server.events = anthropic_stream(orjson.dumps(ANTHROPIC_BODIES["tool_use"]))
    stream = await claude.messages.create(
        model="claude-test",
        max_tokens=1024,
        messages=USER,
        stream=True,
    )
    events: list[Any] = [event async for event in stream]  # the SDK drops `ping`
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    start = events[0].message
    assert start.content == []
    assert start.stop_reason is None
    assert start.usage.input_tokens == 25
    assert start.usage.output_tokens == 1
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "tool_use"
    assert delta.usage.output_tokens == 57

    blocks: dict[int, list[Any]] = {}
    for event in events[1:-2]:
        assert event.type in ("content_block_start", "content_block_delta", "content_block_stop")
        blocks.setdefault(event.index, []).append(event)
    assert sorted(blocks) == [0, 1, 2]
    for index, block_events in blocks.items():
        assert block_events[0].type == "content_block_start"
        assert block_events[-1].type == "content_block_stop"
        assert all(e.type == "content_block_delta" for e in block_events[1:-1]), index
    weather = blocks[1]
    opening = weather[0].content_block
    assert (opening.type, opening.id, opening.name, opening.input) == (
        "tool_use",
        "toolu_01",
        "get_weather",
        {},
    )
    fragments = [e.delta.partial_json for e in weather[1:-1]]
    assert fragments[0] == ""  # Anthropic opens a tool input with an empty fragment
    assert len(fragments) > 2
    assert orjson.loads("".join(fragments)) == ANTHROPIC_BODIES["tool_use"]["content"][1]["input"]


def test_anthropic_wire_framing_names_each_event() -> None:
    events = anthropic_stream(orjson.dumps(ANTHROPIC_BODIES["thinking"]))
    for event in events:
        name, data = event.removesuffix(b"\n\n").split(b"\n")
        assert name.startswith(b"event: ")
        assert data.startswith(b"data: ")
        assert orjson.loads(data[6:])["type"] == name[7:].decode()
    names = [event.split(b"\n")[0][7:].decode() for event in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    payloads = [orjson.loads(event.split(b"\n")[1][6:]) for event in events]
    assert payloads[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    first_block = [p["delta"]["type"] for p in payloads if p.get("index") == 0 and "delta" in p]
    assert first_block[-1] == "signature_delta"
    assert set(first_block[:-1]) == {"thinking_delta"}
    assert len(first_block) > 2
    redacted = [p for p in payloads if p.get("index") == 1]
    assert [p["type"] for p in redacted] == ["content_block_start", "content_block_stop"]
    assert redacted[0]["content_block"] == ANTHROPIC_BODIES["thinking"]["content"][1]


async def test_simulator_answers_replay_through_the_sdks(
    simulator: RunningSimulator,
    replay_server: ReplayServer,
    gpt: openai.AsyncOpenAI,
    claude: anthropic.AsyncAnthropic,
) -> None:
    """Real non-streaming answers (text and tool call) from the project's simulator."""
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    }
    async with aiohttp.ClientSession(headers={"authorization": "Bearer k"}) as http:
        bodies = []
        for extra in ({"n": 2}, {"tools": [tool], "simulate": {"tool_call": 1}}):
            request = {"model": "sim-small", "messages": USER, **extra}
            async with http.post(f"{simulator.base_url}/chat/completions", json=request) as resp:
                assert resp.status == 200
                bodies.append(await resp.read())
        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        request = {"model": "claude-sim", "max_tokens": 256, "messages": USER}
        async with http.post(
            f"{simulator.root_url}/v1/messages", json=request, headers=headers
        ) as resp:
            assert resp.status == 200
            anthropic_body = await resp.read()

    for body in bodies:
        replay_server.events = openai_stream(body, include_usage=True)
        final = await sdk_completion(gpt, include_usage=True)
        assert openai_view(final) == openai_view(ChatCompletion.model_validate_json(body))

    replay_server.events = anthropic_stream(anthropic_body)
    async with claude.messages.stream(
        model="claude-sim",
        max_tokens=256,
        messages=USER,
    ) as stream:
        final_message = await stream.get_final_message()
    expected = Message.model_validate_json(anthropic_body)
    assert anthropic_view(final_message) == anthropic_view(expected)
