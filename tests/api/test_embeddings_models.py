"""Embeddings, model listing and health endpoints."""

from __future__ import annotations

import aiohttp
import openai
import pytest


async def test_embeddings_with_sdk_default_base64_encoding(client: openai.AsyncOpenAI) -> None:
    response = await client.embeddings.create(model="embed", input=["alpha", "beta"])
    assert [item.index for item in response.data] == [0, 1]
    assert len(response.data[0].embedding) > 0
    assert all(isinstance(value, float) for value in response.data[0].embedding)
    assert response.data[0].embedding != response.data[1].embedding
    assert response.usage.prompt_tokens > 0


async def test_embeddings_float_and_dimensions(client: openai.AsyncOpenAI) -> None:
    response = await client.embeddings.create(
        model="embed", input="alpha", encoding_format="float", dimensions=8
    )
    assert len(response.data[0].embedding) == 8
    again = await client.embeddings.create(model="embed", input="alpha", dimensions=8)
    assert again.data[0].embedding == response.data[0].embedding


async def test_embeddings_wrong_input_type_names_the_field(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.embeddings.create(model="embed", input={"text": "x"})  # type: ignore[arg-type]
    assert info.value.status_code == 400
    assert info.value.body["param"] == "input"  # type: ignore[index]


async def test_models_lists_configured_names_not_globs(client: openai.AsyncOpenAI) -> None:
    models = [model.id async for model in client.models.list()]
    assert models == ["chat", "embed", "echo", "azure-echo", "refused"]


async def test_health_and_readiness(gateway_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway_url}/healthz") as response:
            assert response.status == 200
            assert (await response.json()) == {"status": "ok"}
            assert response.headers["x-request-id"]
        async with http.get(f"{gateway_url}/readyz") as response:
            ready = await response.json()
            assert response.status == 200
            assert ready["status"] == "ready"
            assert ready["open_access"] is True
            assert any("open" in warning for warning in ready["warnings"])
