"""Every error class a client can meet, in OpenAI's shape, with no provider secret leaking."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import openai
import pytest

from tests.api.conftest import PROVIDER_KEY

USER = [{"role": "user", "content": "hi"}]


def gateway_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the gateway itself logged (not the SDK client sharing this process)."""
    return "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith("lockgate")
    )


def _error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert exc.response.headers["x-request-id"]
    return body["error"]  # type: ignore[no-any-return]


async def test_unknown_model_is_404_model_not_found(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="gpt-nope", messages=USER)  # type: ignore[arg-type]
    error = _error_of(info.value)
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert "gpt-nope" in error["message"]


async def test_malformed_json_is_400(gateway_url: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gateway_url}/v1/chat/completions",
            data=b'{"model": "chat", "messages": [',
            headers={"content-type": "application/json"},
        ) as response,
    ):
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["code"] == "invalid_json"
        assert "not valid JSON" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": 5, "messages": USER}, "model"),
        ({"model": "chat", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "chat", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"model": "chat", "messages": USER, "temperature": "hot"}, "temperature"),
        ({"model": "chat", "messages": USER, "stream": "yes"}, "stream"),
        ({"model": "chat"}, "messages"),
        ({"model": "chat", "messages": []}, "messages"),
    ],
)
async def test_wrong_field_is_400_naming_it(
    gateway_url: str, body: dict[str, Any], param: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway_url}/v1/chat/completions", json=body) as response,
    ):
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["param"] == param
        assert error["type"] == "invalid_request_error"


async def test_too_many_messages_is_400(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="chat", messages=USER * 51)  # type: ignore[arg-type]
    assert "limit is 50" in _error_of(info.value)["message"]


async def test_body_over_limit_is_413(gateway_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        big = {"model": "chat", "messages": [{"role": "user", "content": "x" * 70_000}]}
        async with http.post(f"{gateway_url}/v1/chat/completions", json=big) as response:
            assert response.status == 413
            error = (await response.json())["error"]
            assert error["code"] == "request_too_large"
            assert "65536" in error["message"]


async def test_body_over_limit_without_content_length_is_413(gateway_url: str) -> None:
    async def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 8192

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway_url}/v1/chat/completions", data=chunks()) as response,
    ):
        assert response.status == 413


async def test_upstream_400_is_passed_on_with_its_message(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="sim/sim-small?status=400", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 400
    assert _error_of(info.value)["message"]


async def test_upstream_429_is_passed_on_with_retry_after(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(
            model="sim/sim-small?status=429&retry_after=7",
            messages=USER,  # type: ignore[arg-type]
        )
    assert info.value.response.headers["retry-after"] == "7"
    assert _error_of(info.value)["code"] == "upstream_rate_limited"


@pytest.mark.parametrize("status", [500, 503])
async def test_upstream_5xx_is_502(client: openai.AsyncOpenAI, status: int) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model=f"sim/sim-small?status={status}", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    error = _error_of(info.value)
    assert error["code"] == "upstream_error"
    assert f"HTTP {status}" in error["message"]
    assert "'sim'" in error["message"]


async def test_upstream_auth_failure_is_502_without_the_key(
    client: openai.AsyncOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="sim/sim-small?status=401", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert _error_of(info.value)["code"] == "upstream_auth_failed"
    assert PROVIDER_KEY not in info.value.response.text
    assert PROVIDER_KEY not in gateway_log(caplog)


async def test_upstream_timeout_is_504(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="sim/sim-small?hang=1", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 504
    error = _error_of(info.value)
    assert error["code"] == "upstream_timeout"
    assert "1.5s" in error["message"]


async def test_upstream_refused_is_502_without_its_url(
    client: openai.AsyncOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="refused", messages=USER)
    assert info.value.status_code == 502
    error = _error_of(info.value)
    assert error["code"] == "upstream_unavailable"
    assert "'dead'" in error["message"]
    assert "127.0.0.1" not in info.value.response.text
    assert "127.0.0.1" not in gateway_log(caplog)


async def test_upstream_connection_reset_is_502(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="sim/sim-small?reset=1", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert _error_of(info.value)["code"] == "upstream_unavailable"


async def test_unknown_route_and_wrong_method(gateway_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway_url}/v1/nothing") as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "not_found"
        async with http.get(f"{gateway_url}/v1/chat/completions") as response:
            assert response.status == 405
            assert "POST" in (await response.json())["error"]["message"]


async def test_provider_key_never_reaches_the_client(client: openai.AsyncOpenAI) -> None:
    for model in ("chat", "sim/sim-small?status=400", "sim/sim-small?status=500"):
        try:
            raw = await client.chat.completions.with_raw_response.create(model=model, messages=USER)  # type: ignore[arg-type]
            text = raw.text
        except openai.APIStatusError as exc:
            text = exc.response.text + str(exc.response.headers)
        assert PROVIDER_KEY not in text


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"GET /healthz?" + b"q" * 70_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + b"x-many: 1234567890\r\n" * 4000 + b"\r\n",
    ],
    ids=["one-big-header", "long-url", "many-headers"],
)
async def test_oversized_request_head_is_431(gateway_url: str, head: bytes) -> None:
    host, port = gateway_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    assert response.startswith(b"HTTP/1.1 431 ")
    assert b'"code":"request_headers_too_large"' in response
    assert b"\r\nx-request-id: " in response


async def test_request_head_under_the_limit_is_served(gateway_url: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway_url}/healthz", headers={"x-big": "a" * 30_000}) as response,
    ):
        assert response.status == 200


@pytest.mark.parametrize("model", ["has space", "new\nline", "x" * 257, ""])
async def test_model_names_are_bounded_and_printable(gateway_url: str, model: str) -> None:
    body = {"model": model, "messages": USER}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway_url}/v1/chat/completions", json=body) as response,
    ):
        assert response.status == 400
        assert (await response.json())["error"]["param"] == "model"
