"""The simulator speaking Cohere v2: chat JSON and SSE events, embed, auth, faults, echo."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from lockgate.simulate.server import RunningSimulator
from tests.simulate.sim_helpers import AUTH, post_json, stats

HELLO = {"model": "command-a", "messages": [{"role": "user", "content": "Capital of France?"}]}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}  # fmt: skip


def url(sim: RunningSimulator, operation: str = "chat") -> str:
    return f"{sim.root_url}/v2/{operation}"


async def events(http: aiohttp.ClientSession, sim: RunningSimulator, body: Any) -> list[Any]:
    async with http.post(url(sim), json={**body, "stream": True}, headers=AUTH) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = await resp.text()
    result = []
    for block in text.strip().split("\n\n"):
        kind, data = block.split("\n")
        value = json.loads(data.removeprefix("data: "))
        assert kind == f"event: {value['type']}"
        result.append(value)
    return result


async def test_chat_answers_in_cohere_shape(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, _, body = await post_json(http, url(sim), HELLO)
    assert status == 200
    assert set(body) == {"id", "finish_reason", "message", "usage"}
    assert body["finish_reason"] == "COMPLETE"
    [part] = body["message"]["content"]
    assert part["text"].startswith("Simulated reply to: Capital of France?")
    assert body["usage"]["tokens"]["output_tokens"] == 20
    assert (await stats(http, sim))["requests_by_model"] == {"command-a": 1}


async def test_stream_events(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    stream = await events(http, sim, {**HELLO, "model": "command-a?tokens=3"})
    kinds = [event["type"] for event in stream]
    assert kinds == ["message-start", "content-start"] + ["content-delta"] * 3 + [
        "content-end",
        "message-end",
    ]
    text = "".join(e["delta"]["message"]["content"]["text"] for e in stream[2:5])
    assert text == "Simulated reply to:"
    assert stream[-1]["delta"]["finish_reason"] == "COMPLETE"
    assert stream[-1]["delta"]["usage"]["tokens"]["output_tokens"] == 3


async def test_tool_calls_json_and_streamed(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    body = {**HELLO, "tools": [WEATHER], "tool_choice": "REQUIRED"}
    status, _, answer = await post_json(http, url(sim), body)
    assert status == 200
    assert answer["finish_reason"] == "TOOL_CALL"
    [call] = answer["message"]["tool_calls"]
    assert call["id"].startswith("get_weather_")
    assert json.loads(call["function"]["arguments"]) == {"city": "example"}
    stream = await events(http, sim, {**HELLO, "tools": [WEATHER], "simulate": {"tool_call": 1}})
    assert stream[2]["type"] == "tool-call-start"
    fragments = "".join(
        e["delta"]["message"]["tool_calls"]["function"]["arguments"]
        for e in stream
        if e["type"] == "tool-call-delta"
    )
    assert json.loads(fragments) == {"city": "example"}
    assert stream[-1]["delta"]["finish_reason"] == "TOOL_CALL"
    follow_up = {
        "model": "command-a",
        "messages": [
            HELLO["messages"][0],
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
        ],
        "tools": [WEATHER],
    }
    status, _, answer = await post_json(http, url(sim), follow_up)
    assert status == 200
    assert answer["finish_reason"] == "COMPLETE"


async def test_json_schema_response_format(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    body = {**HELLO, "response_format": {"type": "json_object", "json_schema": schema}}
    _, _, answer = await post_json(http, url(sim), body)
    assert json.loads(answer["message"]["content"][0]["text"]) == {"n": 1}


async def test_strict_validation(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    cases = [
        {**HELLO, "top_p": 0.5},
        {**HELLO, "p": 1.0},
        {**HELLO, "tools": [WEATHER], "tool_choice": "required"},
        {**HELLO, "messages": [{"role": "developer", "content": "x"}]},
        {**HELLO, "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]},
    ]
    for body in cases:
        status, _, answer = await post_json(http, url(sim), body)
        assert status == 400, body
        assert set(answer) == {"id", "message"}
        assert answer["message"].startswith("invalid request")


async def test_auth_and_unknown_operation(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, _, answer = await post_json(http, url(sim), HELLO, headers={})
    assert status == 401
    assert answer["message"] == "no api key supplied"
    status, _, _ = await post_json(http, url(sim, "rerank"), HELLO)
    assert status == 404


async def test_status_and_fail_times(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    body = {**HELLO, "model": "command-a?status=429&retry_after=3"}
    status, headers, answer = await post_json(http, url(sim), body)
    assert status == 429
    assert headers["retry-after"] == "3"
    assert set(answer) == {"id", "message"}
    flaky = {**HELLO, "simulate": {"fail_times": 1, "status": 503, "key": "co-flaky"}}
    assert (await post_json(http, url(sim), flaky))[0] == 503
    assert (await post_json(http, url(sim), flaky))[0] == 200


async def test_error_after_ends_with_an_error_message_end(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    stream = await events(http, sim, {**HELLO, "simulate": {"tokens": 6, "error_after": 2}})
    assert [e["type"] for e in stream].count("content-delta") == 2
    end = stream[-1]
    assert end["type"] == "message-end"
    assert end["delta"]["finish_reason"] == "ERROR"
    assert "Simulated stream error" in end["delta"]["error"]


async def test_embed(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    body = {
        "model": "embed-v4.0",
        "texts": ["hello", "world"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "output_dimension": 8,
    }
    status, _, answer = await post_json(http, url(sim, "embed"), body)
    assert status == 200
    assert answer["response_type"] == "embeddings_by_type"
    assert [len(v) for v in answer["embeddings"]["float"]] == [8, 8]
    assert answer["meta"]["billed_units"]["input_tokens"] == 4
    status, _, answer = await post_json(http, url(sim, "embed"), {**body, "input_type": None})
    assert status == 400
    status, _, _ = await post_json(http, url(sim, "embed"), {**body, "model": "e?status=500"})
    assert status == 500


async def test_echo(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    headers = {**AUTH, "x-sim-echo-headers": "1"}
    status, _, answer = await post_json(http, url(sim), HELLO, headers=headers)
    assert status == 200
    assert answer["simulator"]["body"] == HELLO
    async with http.get(f"{sim.root_url}/sim/echoes") as resp:
        [echo] = await resp.json()
    assert echo["path"] == "/v2/chat"
