"""The simulator speaking Bedrock Converse: JSON, binary event streams, auth, faults, echo."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from lockgate.providers.bedrock.eventstream import EventStreamDecoder, Message
from lockgate.simulate.server import RunningSimulator
from tests.simulate.sim_helpers import stats, wait_for_stats

AUTH = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240501/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"}  # fmt: skip
HELLO = {"messages": [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]}
TOOLS = {
    "tools": [{"toolSpec": {"name": "top_song", "inputSchema": {"json": {
        "type": "object", "properties": {"sign": {"type": "string"}}, "required": ["sign"]}}}}],
    "toolChoice": {"any": {}},
}  # fmt: skip


def url(sim: RunningSimulator, model: str, method: str = "converse") -> str:
    return f"{sim.root_url}/model/{model}/{method}"


async def post(
    http: aiohttp.ClientSession, target: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    async with http.post(target, json=body, headers=AUTH if headers is None else headers) as resp:
        return resp.status, resp.headers, await resp.json(content_type=None)


async def events(http: aiohttp.ClientSession, target: str, body: Any) -> list[Message]:
    async with http.post(target, json=body, headers=AUTH) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"] == "application/vnd.amazon.eventstream"
        data = await resp.read()
    return EventStreamDecoder().feed(data)  # checks both CRCs of every message


async def test_converse_answers_in_bedrocks_shape(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, _, body = await post(http, url(sim, "anthropic.claude-v2%3A1"), HELLO)
    assert status == 200
    assert set(body) == {"output", "stopReason", "usage", "metrics"}
    [block] = body["output"]["message"]["content"]
    assert block["text"].startswith("Simulated reply to: What is the capital of France?")
    assert body["stopReason"] == "end_turn"
    assert body["usage"]["outputTokens"] == 20
    assert (await stats(http, sim))["requests_by_model"] == {"anthropic.claude-v2:1": 1}


async def test_forced_tool_use(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    status, _, body = await post(http, url(sim, "m"), {**HELLO, "toolConfig": TOOLS})
    assert status == 200
    [block] = body["output"]["message"]["content"]
    assert block["toolUse"]["name"] == "top_song"
    assert block["toolUse"]["input"] == {"sign": "example"}
    assert block["toolUse"]["toolUseId"].startswith("tooluse_")
    assert body["stopReason"] == "tool_use"


async def test_stream_is_a_well_formed_event_stream(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    body = {**HELLO, "inferenceConfig": {"maxTokens": 3}}
    messages = await events(http, url(sim, "m", "converse-stream"), body)
    kinds = [m.headers[":event-type"] for m in messages]
    assert kinds == ["messageStart"] + ["contentBlockDelta"] * 3 + [
        "contentBlockStop", "messageStop", "metadata",
    ]  # fmt: skip
    assert json.loads(messages[-2].payload) == {"stopReason": "max_tokens"}
    assert json.loads(messages[-1].payload)["usage"]["outputTokens"] == 3


async def test_error_after_sends_an_exception_message(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    body = {**HELLO, "simulate": {"tokens": 6, "error_after": 2}}
    messages = await events(http, url(sim, "m", "converse-stream"), body)
    assert [m.headers.get(":event-type") for m in messages[:3]] == [
        "messageStart", "contentBlockDelta", "contentBlockDelta",
    ]  # fmt: skip
    last = messages[-1]
    assert last.headers[":message-type"] == "exception"
    assert last.headers[":exception-type"] == "modelStreamErrorException"
    assert json.loads(last.payload) == {"message": "Simulated stream error after 2 chunks."}


async def test_missing_signature_is_403(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    status, headers, body = await post(http, url(sim, "m"), HELLO, headers={})
    assert status == 403
    assert headers["x-amzn-ErrorType"].startswith("AccessDeniedException:")
    assert body == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize(
    ("model", "header", "status", "kind"),
    [
        ("m%3Fstatus%3D429", None, 429, "ThrottlingException"),
        ("m", "status=503", 503, "ServiceUnavailableException"),
        ("m", "status=400", 400, "ValidationException"),
    ],
)
async def test_status_directives_answer_aws_errors(
    sim: RunningSimulator, http: aiohttp.ClientSession, model: str, header: str | None,
    status: int, kind: str,
) -> None:  # fmt: skip
    headers = {**AUTH, "x-simulate": header} if header else AUTH
    code, answer_headers, body = await post(http, url(sim, model), HELLO, headers)
    assert code == status
    assert answer_headers["x-amzn-ErrorType"].split(":")[0] == kind
    assert set(body) == {"message"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**HELLO, "max_tokens": 5}, "extraneous key [max_tokens]"),
        ({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, "start with a user"),
        ({"messages": [{"role": "user", "content": [{"text": " "}]}]}, "blank"),
        (
            {"messages": [{"role": "user", "content": [
                {"toolResult": {"toolUseId": "x", "content": [{"text": "1"}]}}]}],
             "toolConfig": TOOLS},
            "must match a toolUse",
        ),
    ],
)  # fmt: skip
async def test_invalid_requests_are_validation_errors(
    sim: RunningSimulator, http: aiohttp.ClientSession, body: Any, fragment: str
) -> None:
    status, headers, answer = await post(http, url(sim, "m"), body)
    assert status == 400
    assert headers["x-amzn-ErrorType"].startswith("ValidationException:")
    assert fragment in answer["message"]


async def test_echo(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    status, _, body = await post(http, url(sim, "m"), HELLO, {**AUTH, "x-sim-echo-headers": "1"})
    assert status == 200
    assert body["simulator"]["path"] == "/model/m/converse"
    async with http.get(f"{sim.root_url}/sim/echoes") as resp:
        assert (await resp.json())[-1]["body"] == HELLO


TITAN = "amazon.titan-embed-text-v2%3A0"
COHERE = "cohere.embed-english-v3"


async def test_titan_invoke_answers_one_deterministic_unit_vector(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, _, body = await post(http, url(sim, TITAN, "invoke"), {"inputText": "hello"})
    assert status == 200
    assert set(body) == {"embedding", "inputTextTokenCount", "embeddingsByType"}
    assert len(body["embedding"]) == 1024
    assert body["embeddingsByType"] == {"float": body["embedding"]}
    assert body["inputTextTokenCount"] == 2
    assert abs(sum(v * v for v in body["embedding"]) - 1) < 1e-4
    request = {"inputText": "hello", "dimensions": 256, "normalize": True}
    _, _, small = await post(http, url(sim, TITAN, "invoke"), request)
    _, _, again = await post(http, url(sim, TITAN, "invoke"), request)
    assert len(small["embedding"]) == 256
    assert small["embedding"] == again["embedding"]
    assert (await stats(http, sim))["requests_by_model"] == {"amazon.titan-embed-text-v2:0": 3}


@pytest.mark.parametrize(
    ("types", "response_type"), [(None, "embeddings_floats"), (["float"], "embeddings_by_type")]
)
async def test_cohere_invoke_answers_both_response_types(
    sim: RunningSimulator, http: aiohttp.ClientSession, types: Any, response_type: str
) -> None:
    request: dict[str, Any] = {"texts": ["a", "b"], "input_type": "search_query"}
    if types is not None:
        request["embedding_types"] = types
    status, _, body = await post(http, url(sim, COHERE, "invoke"), request)
    assert status == 200
    assert set(body) == {"embeddings", "id", "texts", "response_type"}
    assert body["response_type"] == response_type
    assert body["texts"] == ["a", "b"]
    vectors = body["embeddings"]["float"] if types else body["embeddings"]
    assert [len(vector) for vector in vectors] == [16, 16]
    assert vectors[0] != vectors[1]


@pytest.mark.parametrize(
    ("model", "body", "fragment"),
    [
        (TITAN, {"inputText": "x", "dimensions": 128}, "dimensions"),
        (TITAN, {"inputText": "x", "texts": ["x"]}, "extraneous key [texts]"),
        (TITAN, {"inputText": ""}, "inputText"),
        ("amazon.titan-embed-text-v1", {"inputText": "x", "dimensions": 256}, "extraneous key"),
        (COHERE, {"texts": ["x"]}, "input_type"),
        (COHERE, {"texts": [], "input_type": "search_query"}, "texts"),
        (COHERE, {"texts": ["x"] * 97, "input_type": "search_query"}, "96"),
        (COHERE, {"texts": ["x"], "input_type": "clustering", "dimensions": 8}, "extraneous"),
        ("anthropic.claude-v2", {"inputText": "x"}, "embedding models only"),
    ],
)
async def test_invalid_invoke_bodies_are_validation_errors(
    sim: RunningSimulator, http: aiohttp.ClientSession, model: str, body: Any, fragment: str
) -> None:
    status, headers, answer = await post(http, url(sim, model, "invoke"), body)
    assert status == 400
    assert headers["x-amzn-ErrorType"].startswith("ValidationException:")
    assert fragment in answer["message"]


async def test_invoke_without_a_signature_is_403(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, headers, body = await post(
        http, url(sim, TITAN, "invoke"), {"inputText": "x"}, headers={}
    )
    assert status == 403
    assert headers["x-amzn-ErrorType"].startswith("AccessDeniedException:")
    assert body == {"message": "Missing Authentication Token"}


async def test_invoke_directives_and_echo(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    titan = {"inputText": "x"}
    status, headers, _ = await post(
        http, url(sim, f"{TITAN}%3Fstatus%3D429%26retry_after%3D3", "invoke"), titan
    )
    assert (status, headers["retry-after"]) == (429, "3")
    assert headers["x-amzn-ErrorType"].startswith("ThrottlingException:")
    flaky = {**titan, "simulate": {"fail_times": 1, "status": 503, "key": "flaky-invoke"}}
    assert (await post(http, url(sim, TITAN, "invoke"), flaky))[0] == 503
    assert (await post(http, url(sim, TITAN, "invoke"), flaky))[0] == 200
    cohere = {"texts": ["echo me"], "input_type": "search_document"}
    echo = {**AUTH, "x-sim-echo-headers": "1", "x-simulate": "latency_ms=1"}
    status, _, body = await post(http, url(sim, COHERE, "invoke"), cohere, echo)
    assert status == 200
    assert body["simulator"]["path"] == f"/model/{COHERE}/invoke"
    async with http.get(f"{sim.root_url}/sim/echoes") as resp:
        assert (await resp.json())[-1]["body"] == cohere


async def test_invoke_hang_and_reset(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    titan = {"inputText": "x"}
    request = asyncio.ensure_future(post(http, url(sim, f"{TITAN}%3Fhang%3D1", "invoke"), titan))
    await wait_for_stats(http, sim, lambda s: s["in_flight"] == 1)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await wait_for_stats(http, sim, lambda s: s["cancelled"] == 1 and s["in_flight"] == 0)
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(http, url(sim, f"{TITAN}%3Freset%3D1", "invoke"), titan)
