"""The simulator speaking Bedrock Converse: JSON, binary event streams, auth, faults, echo."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from lockgate.providers.bedrock.eventstream import EventStreamDecoder, Message
from lockgate.simulate import RunningSimulator
from tests.simulate.sim_helpers import stats

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
