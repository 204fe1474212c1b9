"""A provider that quotes what it was sent must not make the gateway leak configured secrets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import openai
import pytest
from aiohttp import web

from tests.conftest import config_from_yaml, free_port, running_gateway

API_KEY = "sk-leaky-provider-key-1234"
HEADER_SECRET = "team-token-secret-5678"


@pytest.fixture
async def leaky_upstream() -> AsyncIterator[str]:
    """An upstream whose errors quote every request header, as some servers' debug modes do."""

    async def chat(request: web.Request) -> web.Response:
        quoted = ", ".join(f"{k}={v}" for k, v in request.headers.items())
        return web.json_response(
            {"error": {"message": f"bad request; you sent {quoted}", "type": "x"}}, status=400
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_configured_secrets_are_scrubbed_from_upstream_errors(
    leaky_upstream: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = config_from_yaml(
        f"""
providers:
  - name: leaky
    type: openai
    base_url: "{leaky_upstream}"
    api_key: "${{KEY}}"
    headers: {{x-team-token: "${{TEAM}}"}}
models:
  - {{name: m, targets: [{{provider: leaky, model: up}}]}}
routing: {{retries: 0}}
""",
        KEY=API_KEY,
        TEAM=HEADER_SECRET,
    )
    async with running_gateway(config) as url:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
    text = info.value.response.text
    assert "x-team-token=***" in text  # the provider's message is kept, the secret is not
    assert HEADER_SECRET not in text
    assert API_KEY not in text
    gateway_log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("lockgate"))
    assert HEADER_SECRET not in gateway_log
    assert API_KEY not in gateway_log
