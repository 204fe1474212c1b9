"""The simulator speaking Gemini: generateContent, SSE streams, embeddings, Vertex, echo."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from lockgate.simulate.server import RunningSimulator
from tests.simulate.gemini_helpers import HELLO, KEY, VERTEX, WEATHER, gemini_url, post, sse
from tests.simulate.sim_helpers import stats


async def test_generate_content_answers_in_geminis_shape(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, gemini_url(sim, "gemini-2.0-flash"), HELLO)
    assert status == 200
    assert set(body) == {"candidates", "usageMetadata", "modelVersion", "responseId"}
    (candidate,) = body["candidates"]
    assert "index" not in candidate  # proto3 JSON leaves out the default 0
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["role"] == "model"
    text = candidate["content"]["parts"][0]["text"]
    assert text.startswith("Simulated reply to: What is the capital of France?")
    usage = body["usageMetadata"]
    assert usage["candidatesTokenCount"] == 20
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + 20
    assert body["modelVersion"] == "gemini-2.0-flash"


async def test_generation_config_is_honoured(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    config = {"maxOutputTokens": 3, "candidateCount": 2, "stopSequences": ["never"]}
    status, body = await post(http, gemini_url(sim, "g"), {**HELLO, "generationConfig": config})
    assert status == 200
    first, second = body["candidates"]
    assert second["index"] == 1
    assert first["finishReason"] == second["finishReason"] == "MAX_TOKENS"
    assert first["content"]["parts"][0]["text"] == "Simulated reply to:"
    assert body["usageMetadata"]["candidatesTokenCount"] == 6


async def test_forced_function_call_carries_args_and_a_thought_signature(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    body = {**HELLO, "tools": [WEATHER], "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}
    status, answer = await post(http, gemini_url(sim, "g"), body)
    assert status == 200
    (part,) = answer["candidates"][0]["content"]["parts"]
    assert part["functionCall"] == {"name": "get_weather", "args": {"city": "example"}}
    assert part["thoughtSignature"]
    assert answer["candidates"][0]["finishReason"] == "STOP"
    events = await sse(http, gemini_url(sim, "g", "streamGenerateContent?alt=sse"), body)
    assert len(events) == 1
    assert (
        events[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"] == "get_weather"
    )


async def test_json_schema_output(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    config = {"responseMimeType": "application/json", "responseJsonSchema": schema}
    status, body = await post(http, gemini_url(sim, "g"), {**HELLO, "generationConfig": config})
    assert status == 200
    assert json.loads(body["candidates"][0]["content"]["parts"][0]["text"]) == {"name": "example"}


async def test_stream_is_one_event_per_word_and_finishes_last(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    url = gemini_url(sim, "g%3Ftokens%3D5", "streamGenerateContent?alt=sse")
    events = await sse(http, url, HELLO)
    assert len(events) == 5
    texts = [e["candidates"][0]["content"]["parts"][0]["text"] for e in events]
    assert "".join(texts) == "Simulated reply to: What is"
    assert [e["candidates"][0].get("finishReason") for e in events] == [None] * 4 + ["STOP"]
    assert "candidatesTokenCount" not in events[0]["usageMetadata"]
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 5
    assert len({e["responseId"] for e in events}) == 1


async def test_batch_embed_contents(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    def request(text: str, dims: int | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"model": "models/emb", "content": {"parts": [{"text": text}]}}
        if dims:
            entry["outputDimensionality"] = dims
        return entry

    body = {"requests": [request("a", 4), request("b", 4), request("a", 4)]}
    code, answer = await post(http, gemini_url(sim, "emb", "batchEmbedContents"), body)
    assert code == 200
    vectors = [item["values"] for item in answer["embeddings"]]
    assert [len(v) for v in vectors] == [4, 4, 4]
    assert vectors[0] == vectors[2] != vectors[1]
    code, _ = await post(
        http, gemini_url(sim, "other", "batchEmbedContents"), {"requests": [request("a")]}
    )
    assert code == 400


async def test_vertex_generate_and_predict(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    bearer = {"Authorization": "Bearer ya29.token"}
    code, answer = await post(
        http, f"{sim.root_url}{VERTEX}/gemini-2.5-pro:generateContent", HELLO, bearer
    )
    assert code == 200
    assert answer["modelVersion"] == "gemini-2.5-pro"
    body = {"instances": [{"content": "hello world"}], "parameters": {"outputDimensionality": 3}}
    code, answer = await post(
        http, f"{sim.root_url}{VERTEX}/text-embedding-005:predict", body, bearer
    )
    assert code == 200
    (prediction,) = answer["predictions"]
    assert len(prediction["embeddings"]["values"]) == 3
    assert prediction["embeddings"]["statistics"] == {"truncated": False, "token_count": 3}


async def test_echo_and_stats(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    headers = {**KEY, "x-sim-echo-headers": "1"}
    code, answer = await post(http, gemini_url(sim, "echo-model"), HELLO, headers)
    assert code == 200
    seen = answer["simulator"]
    assert seen["path"] == "/v1beta/models/echo-model:generateContent"
    assert seen["headers"]["x-goog-api-key"] == "AIza-test-key"
    assert seen["body"] == HELLO
    async with http.get(f"{sim.root_url}/sim/echoes") as resp:
        assert (await resp.json())[-1]["path"] == seen["path"]
    await post(http, gemini_url(sim, "echo-model"), HELLO, {})
    counters = await stats(http, sim)
    assert counters["requests_by_model"]["echo-model"] == 1  # the 403 came before the model
    assert counters["responses_by_status"] == {"200": 1, "403": 1}
    assert counters["total_requests"] == 2
