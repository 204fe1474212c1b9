"""The usage ledger through a real gateway: one row per request, as a user would look it up.

The OpenAI and Anthropic SDKs call a gateway on loopback in front of the simulator; the rows are
read back from the gateway's SQLite file with plain SQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.access.admin_helpers import (
    USER,
    anthropic_client,
    base_yaml,
    declared_key_yaml,
    openai_client,
    raw_request,
    secret,
    wait_for,
)
from tests.conftest import config_from_yaml, running_gateway
from tests.storage.raw import query

KEYS = "teams: [{name: web}]\nkeys:\n" + declared_key_yaml("alpha", team="web")
SLOW = "  - name: slow\n    targets: [{provider: sim, model: 'sim-small?tokens_per_s=20&tokens=200'}]\n"


@dataclass
class Gateway:
    url: str
    database: str

    async def rows(self, where: str = "1=1", **params: Any) -> list[dict[str, Any]]:
        result = await query(self.database, f"SELECT * FROM usage WHERE {where}", params)
        return [dict(row._mapping) for row in result]

    async def row(self, request_id: str) -> dict[str, Any]:
        """The row of the request whose `x-request-id` answer was `request_id`, once written."""

        async def probe() -> dict[str, Any] | None:
            rows = await self.rows("request_id = :id OR client_request_id = :id", id=request_id)
            return rows[0] if rows else None

        found, _ = await wait_for(probe, 10)
        return found


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    database = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'ledger.db'}"
    yaml = base_yaml(admin_key=False, database=database, extra_models=SLOW) + KEYS
    async with running_gateway(config_from_yaml(yaml)) as url:
        yield Gateway(url, database)


async def test_a_completion_gets_a_row_with_who_what_and_cost(gateway: Gateway) -> None:
    async with openai_client(gateway.url, secret("alpha")) as client:
        answer = await client.chat.completions.with_raw_response.create(
            model="m-small", messages=USER, extra_headers={"x-lockgate-tags": "job=nightly"}
        )
    completion = answer.parse()
    row = await gateway.row(answer.headers["x-request-id"])
    assert row["key_name"] == "alpha"
    assert row["team"] == "web"
    assert row["endpoint"] == "chat"
    assert (row["model"], row["provider"], row["target_model"]) == ("m-small", "sim", "sim-small")
    assert row["status"] == 200
    assert row["error_type"] is None
    assert completion.usage is not None
    assert row["input_tokens"] == completion.usage.prompt_tokens
    assert row["output_tokens"] == completion.usage.completion_tokens
    assert not row["estimated"]
    # m-small costs $1000 / $2000 per million tokens: micro-USD per token.
    expected = 1000 * row["input_tokens"] + 2000 * row["output_tokens"]
    assert row["cost_usd_micros"] == expected
    assert answer.headers["x-lockgate-cost-usd"] == f"{expected / 1_000_000:.6f}"
    assert row["attempts"] == 1
    assert row["latency_ms"] > 0
    assert row["ttft_ms"] is None  # not a stream
    assert not row["stream"]
    assert not row["cache_hit"]
    assert orjson.loads(row["tags"]) == {"job": "nightly"}


async def test_a_stream_the_client_did_not_ask_usage_for_is_metered_and_shows_none(
    gateway: Gateway,
) -> None:
    async with openai_client(gateway.url, secret("alpha")) as client:
        answer = await client.chat.completions.with_raw_response.create(
            model="m-small", messages=USER, stream=True
        )
        chunks = [chunk async for chunk in answer.parse()]
    assert chunks
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)  # no usage-only last chunk either
    row = await gateway.row(answer.headers["x-request-id"])
    assert row["stream"]
    assert not row["estimated"]  # the provider's own count, asked for by the gateway
    assert row["input_tokens"] > 0
    assert row["output_tokens"] > 0
    assert row["ttft_ms"] is not None
    assert 0 < row["ttft_ms"] <= row["latency_ms"]


async def test_a_stream_that_asked_for_usage_gets_it_and_the_row_agrees(gateway: Gateway) -> None:
    async with openai_client(gateway.url, secret("alpha")) as client:
        answer = await client.chat.completions.with_raw_response.create(
            model="m-small",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in answer.parse()]
    usage = chunks[-1].usage
    assert usage is not None
    assert chunks[-1].choices == []
    row = await gateway.row(answer.headers["x-request-id"])
    assert (row["input_tokens"], row["output_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )


async def test_the_raw_stream_carries_no_usage_field_at_all(gateway: Gateway) -> None:
    body = b'{"model": "m-small", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    answer = await raw_request(
        gateway.url,
        "POST",
        "/v1/chat/completions",
        [(b"authorization", f"Bearer {secret('alpha')}".encode())],
        body,
    )
    assert answer.status == 200
    assert b"data: [DONE]" in answer.body
    assert b'"usage"' not in answer.body


async def test_failed_requests_are_recorded_with_their_status_and_error(gateway: Gateway) -> None:
    async with openai_client(gateway.url, secret("alpha")) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="no-such-model", messages=USER)
        with pytest.raises(openai.AuthenticationError):
            await openai_client(gateway.url, "lg-wrong").chat.completions.create(
                model="m-small", messages=USER
            )
    assert missing.value.response is not None
    row = await gateway.row(missing.value.response.headers["x-request-id"])
    assert (row["status"], row["error_type"]) == (404, "model_not_found")
    assert row["key_name"] == "alpha"
    assert row["cost_usd_micros"] == 0


async def test_an_upstream_failure_is_recorded_with_its_attempts(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    yaml = base_yaml(admin_key=False, database=database) + (
        "  - name: broken\n    targets: [{provider: sim, model: 'sim-small?status=500'}]\n"
    )
    yaml = yaml.replace(
        "routing: {retries: 0, timeout_s: 10}", "routing: {retries: 1, backoff_s: 0}"
    )
    async with running_gateway(config_from_yaml(yaml)) as url:
        async with openai_client(url, "none") as client:
            with pytest.raises(openai.InternalServerError) as failed:
                await client.chat.completions.create(model="broken", messages=USER)
        assert failed.value.response is not None
        row = await Gateway(url, database).row(failed.value.response.headers["x-request-id"])
    assert row["status"] == 502
    assert row["error_type"] == "upstream_error"
    assert row["attempts"] == 2


async def test_a_client_that_hangs_up_mid_stream_is_recorded_as_499(gateway: Gateway) -> None:
    async with openai_client(gateway.url, secret("alpha")) as client:
        answer = await client.chat.completions.with_raw_response.create(
            model="slow", messages=USER, stream=True
        )
        stream = answer.parse()
        async for _ in stream:
            break
        await stream.close()
    row = await gateway.row(answer.headers["x-request-id"])
    assert (row["status"], row["error_type"]) == (499, "client_disconnected")
    assert row["output_tokens"] >= 1  # what was streamed before the hang-up
    assert row["estimated"]  # the provider never got to report its count


async def test_a_reused_request_id_still_gets_a_row_per_request(gateway: Gateway) -> None:
    async with openai_client(gateway.url, secret("alpha")) as client:
        for _ in range(3):
            answer = await client.chat.completions.with_raw_response.create(
                model="m-small", messages=USER, extra_headers={"x-request-id": "retry-me-1"}
            )
            assert answer.headers["x-request-id"] == "retry-me-1"

    async def three() -> list[dict[str, Any]] | None:
        rows = await gateway.rows("client_request_id = 'retry-me-1'")
        return rows if len(rows) == 3 else None

    rows, _ = await wait_for(three, 10)
    assert len({row["request_id"] for row in rows}) == 3


async def test_anthropic_messages_and_embeddings_get_rows_too(gateway: Gateway) -> None:
    async with anthropic_client(gateway.url, secret("alpha")) as claude:
        message = await claude.messages.with_raw_response.create(
            model="m-small", max_tokens=50, messages=USER
        )
    parsed = await message.parse()
    row = await gateway.row(message.headers["x-request-id"])
    assert row["endpoint"] == "messages"
    assert row["output_tokens"] == parsed.usage.output_tokens
    async with openai_client(gateway.url, secret("alpha")) as client:
        vectors = await client.embeddings.with_raw_response.create(
            model="m-small", input=["one", "two"]
        )
    row = await gateway.row(vectors.headers["x-request-id"])
    assert row["endpoint"] == "embeddings"
    assert row["input_tokens"] == vectors.parse().usage.prompt_tokens


async def test_concurrent_requests_each_get_exactly_one_row(gateway: Gateway) -> None:
    async with openai_client(gateway.url, secret("alpha")) as client:

        async def one(number: int) -> str:
            answer = await client.chat.completions.with_raw_response.create(
                model="m-small",
                messages=USER,
                extra_headers={"x-request-id": f"burst-{number}"},
            )
            return answer.headers["x-request-id"]

        ids = await asyncio.gather(*(one(n) for n in range(100)))

    async def all_rows() -> list[dict[str, Any]] | None:
        rows = await gateway.rows("client_request_id LIKE 'burst-%'")
        return rows if len(rows) >= 100 else None

    rows, _ = await wait_for(all_rows, 10)
    assert sorted(row["client_request_id"] for row in rows) == sorted(ids)
