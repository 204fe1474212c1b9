"""Gemini targets end to end: embeddings and upstream failures as the openai SDK sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.api.gemini_gateway import (
    GEMINI_KEY,
    USER,
    gemini_gateway,
    last_echo,
)


@pytest.fixture(scope="module")
async def gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    async with gemini_gateway(simulator) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("encoding", ["sdk-default", "float"])
async def test_embeddings(
    client: openai.AsyncOpenAI, simulator: RunningSimulator, encoding: str
) -> None:
    extra: dict[str, Any] = {} if encoding == "sdk-default" else {"encoding_format": "float"}
    result = await client.embeddings.create(
        model="gembed", input=["fjord", "glacier"], dimensions=8, **extra
    )
    assert [item.index for item in result.data] == [0, 1]
    assert [len(item.embedding) for item in result.data] == [8, 8]
    assert all(isinstance(value, float) for value in result.data[0].embedding)
    seen = await last_echo(simulator)
    assert seen["path"] == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert seen["body"]["requests"][1] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "glacier"}]},
        "outputDimensionality": 8,
    }


async def test_upstream_503_is_502(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="gem/gemini-x?status=503", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    error = info.value.response.json()["error"]
    assert error["code"] == "upstream_error"
    assert "overloaded" in error["message"]
    assert GEMINI_KEY not in info.value.response.text


async def test_upstream_400_is_passed_on(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="gem/gemini-x?status=400", messages=USER)  # type: ignore[arg-type]
    error = info.value.response.json()["error"]
    assert error["code"] == "invalid_argument"
    assert error["message"] == "Request contains an invalid argument."


async def test_upstream_429_passes_retry_after(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(
            model="gem/gemini-x?status=429&retry_after=3",
            messages=USER,  # type: ignore[arg-type]
        )
    assert info.value.response.headers["retry-after"] == "3"


async def test_unsupported_parameter_is_400_naming_it(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(
            model="gchat",
            messages=USER,  # type: ignore[arg-type]
            logit_bias={"50256": -100},
        )
    error = info.value.response.json()["error"]
    assert (error["code"], error["param"]) == ("unsupported_parameter", "logit_bias")
    assert "'gem'" in error["message"]


async def test_in_band_error_mid_stream_raises_in_the_sdk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gem/gemini-x?tokens=10&error_after=3",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
    )
    received = 0
    with pytest.raises(openai.APIError, match="Simulated stream error"):
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received += 1
    assert received == 3


async def test_in_band_error_before_any_content_is_an_http_error(
    client: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(
            model="gem/gemini-x?error_after=0",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
        )
    assert info.value.status_code == 502
    assert "Simulated stream error" in info.value.response.json()["error"]["message"]
