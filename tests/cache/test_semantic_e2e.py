"""The semantic cache through a real gateway, with the real local embeddings model.

`type: local-embeddings` runs all-MiniLM-L6-v2 inside the gateway (the `semantic` extra, which
the test command installs); the same model answers `/v1/embeddings`.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.conftest import config_from_yaml, running_gateway

RESET = "How do I reset my password?"
REWORDED = "How can I reset my password?"
UNRELATED = "What is the capital of France?"


@pytest.fixture(scope="module")
async def url(simulator: RunningSimulator) -> AsyncIterator[str]:
    yaml = f"""
providers:
  - {{name: sim, type: openai, base_url: "{simulator.base_url}", api_key: sim-key}}
  - {{name: local, type: local-embeddings}}
models:
  - {{name: m, targets: [{{provider: sim, model: sim-small}}]}}
  - {{name: embed-local, targets: [{{provider: local, model: all-MiniLM-L6-v2}}]}}
cache: {{ttl_s: 60, semantic: {{enabled: true, threshold: 0.92, embeddings: embed-local}}}}
"""
    async with running_gateway(config_from_yaml(yaml)) as base:
        yield base


async def ask(url: str, messages: list[Any], **options: Any) -> tuple[Any, dict[str, str]]:
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=messages, **options
        )
    return raw.parse(), dict(raw.headers)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def test_a_reworded_question_is_a_hit_and_an_unrelated_one_a_miss(url: str) -> None:
    first, headers = await ask(url, user(RESET))
    assert headers["x-lockgate-cache"] == "miss"
    reworded, headers = await ask(url, user(REWORDED))
    assert headers["x-lockgate-cache"] == "hit"
    assert 0.92 <= float(headers["x-lockgate-cache-similarity"]) < 1
    assert reworded.id == first.id
    unrelated, headers = await ask(url, user(UNRELATED))
    assert headers["x-lockgate-cache"] == "miss"
    assert unrelated.id != first.id


async def test_only_the_last_question_is_compared_by_meaning(url: str) -> None:
    history = [
        {"role": "user", "content": "I use the mobile app."},
        {"role": "assistant", "content": "Noted."},
    ]
    first, _ = await ask(url, [*history, {"role": "user", "content": RESET}])
    other_history = [{**history[0], "content": "I use the website."}, history[1]]
    answer, headers = await ask(url, [*other_history, {"role": "user", "content": REWORDED}])
    assert headers["x-lockgate-cache"] == "miss"
    assert answer.id != first.id
    same, headers = await ask(url, [*history, {"role": "user", "content": REWORDED}])
    assert headers["x-lockgate-cache"] == "hit"
    assert same.id == first.id


async def test_other_sampling_parameters_never_share_answers(url: str) -> None:
    question = "How do I rotate my API token?"
    first, _ = await ask(url, user(question), temperature=0.1)
    other, headers = await ask(url, user("How can I rotate my API token?"), temperature=0.7)
    assert headers["x-lockgate-cache"] == "miss"
    assert other.id != first.id


async def test_the_local_model_serves_the_embeddings_endpoint(url: str) -> None:
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        answer = await client.embeddings.create(model="embed-local", input=[RESET, UNRELATED])
        raw = await client.embeddings.with_raw_response.create(
            model="embed-local", input=RESET, encoding_format="base64"
        )
    first, second = (item.embedding for item in answer.data)
    assert len(first) == len(second) == 384
    assert abs(sum(x * x for x in first) - 1) < 1e-3  # unit vectors
    assert sum(a * b for a, b in zip(first, second, strict=True)) < 0.5
    assert answer.usage.prompt_tokens > 10
    packed = raw.http_response.json()["data"][0]["embedding"]
    unpacked = struct.unpack("<384f", base64.b64decode(packed))
    assert max(abs(a - b) for a, b in zip(unpacked, first, strict=True)) < 1e-5


async def test_a_chat_request_to_an_embeddings_only_provider_is_refused(url: str) -> None:
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.chat.completions.create(model="embed-local", messages=user("hi"))
    assert "embeddings only" in raised.value.message
