"""Embeddings (float and the SDK's default base64) and the model list."""

from __future__ import annotations

import base64
import math
import struct

import aiohttp
import openai
import pytest
from openai.types import CreateEmbeddingResponse

from lockgate.simulate.server import RunningSimulator
from tests.simulate.sim_helpers import AUTH, post_json


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(value * value for value in vector))


async def test_sdk_default_base64_embeddings(client: openai.AsyncOpenAI) -> None:
    # The SDK asks for base64 under the hood and decodes it back to floats.
    result = await client.embeddings.create(model="sim-embed", input=["alpha", "beta"])
    assert result.object == "list"
    assert result.model == "sim-embed"
    assert [item.index for item in result.data] == [0, 1]
    first, second = (item.embedding for item in result.data)
    assert len(first) == len(second) == 16
    assert _norm(first) == pytest.approx(1.0, abs=1e-5)
    assert first != second
    # ceil(5 / 4) + ceil(4 / 4)
    assert result.usage.prompt_tokens == 3
    assert result.usage.total_tokens == 3


async def test_float_and_base64_agree(
    http: aiohttp.ClientSession, sim: RunningSimulator, client: openai.AsyncOpenAI
) -> None:
    url = f"{sim.base_url}/embeddings"
    body = {"model": "sim-embed", "input": "same text", "dimensions": 8}
    status, _, as_float = await post_json(http, url, {**body, "encoding_format": "float"})
    assert status == 200
    CreateEmbeddingResponse.model_validate(as_float)
    floats = as_float["data"][0]["embedding"]
    assert len(floats) == 8
    assert as_float["data"][0]["object"] == "embedding"
    _, _, as_b64 = await post_json(http, url, {**body, "encoding_format": "base64"})
    packed = base64.b64decode(as_b64["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == floats
    sdk = await client.embeddings.create(model="sim-embed", input="same text", dimensions=8)
    assert sdk.data[0].embedding == floats
    sdk_float = await client.embeddings.create(
        model="sim-embed", input="same text", dimensions=8, encoding_format="float"
    )
    assert sdk_float.data[0].embedding == floats


async def test_token_array_inputs(client: openai.AsyncOpenAI) -> None:
    single = await client.embeddings.create(model="sim-embed", input=[1, 2, 3])
    assert len(single.data) == 1
    assert single.usage.prompt_tokens == 3
    many = await client.embeddings.create(model="sim-embed", input=[[1, 2, 3], [4, 5]])
    assert len(many.data) == 2
    assert many.usage.prompt_tokens == 5
    assert many.data[0].embedding == single.data[0].embedding


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "sim-embed"}, "input"),
        ({"model": "sim-embed", "input": []}, "input"),
        ({"model": "sim-embed", "input": [1, "a"]}, "input"),
        ({"model": "sim-embed", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"model": "sim-embed", "input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x"}, "model"),
    ],
)
async def test_embedding_validation(
    http: aiohttp.ClientSession, sim: RunningSimulator, body: dict[str, object], param: str
) -> None:
    status, _, result = await post_json(http, f"{sim.base_url}/embeddings", body)
    assert status == 400
    assert result["error"]["param"] == param


async def test_models(client: openai.AsyncOpenAI, http: aiohttp.ClientSession) -> None:
    page = await client.models.list()
    ids = [model.id for model in page.data]
    assert ids == ["sim-small", "sim-large", "sim-embed"]
    assert all(m.object == "model" and m.owned_by == "lockgate-simulator" for m in page.data)
    model = await client.models.retrieve("sim-large")
    assert model.id == "sim-large"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("gpt-nope")
    async with http.get(f"{client.base_url}models", headers=AUTH) as resp:
        body = await resp.json()
    assert body["object"] == "list"
