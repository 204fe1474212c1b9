"""A gateway whose models are served by `type: gemini` targets: the session simulator speaking
Gemini (API key) and Vertex AI (bearer token). Shared by the test_gemini_target*.py modules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from lockgate.simulate.server import RunningSimulator
from tests.conftest import config_from_yaml, running_gateway

GEMINI_KEY = "AIzaSy-gemini-provider-secret-61d2"
VERTEX_TOKEN = "ya29.vertex-access-token-5e0f"
USER = [{"role": "user", "content": "Tell me about Oslo"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "strict": True,
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"]}},
            "required": ["city", "unit"],
        },
    },
}
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def gateway_yaml(root: str) -> str:
    return f"""
providers:
  - {{name: gem, type: gemini, base_url: "{root}", api_key: "${{GEMINI_KEY}}"}}
  - name: gem-echo
    type: gemini
    base_url: "{root}"
    api_key: "${{GEMINI_KEY}}"
    headers: {{x-sim-echo-headers: "1"}}
  - name: vertex
    type: gemini
    base_url: "{root}"
    api_key: "${{VERTEX_TOKEN}}"
    vertex: {{project: my-project, location: europe-west4}}
    headers: {{x-sim-echo-headers: "1"}}
models:
  - name: gchat
    targets: [{{provider: gem, model: gemini-2.0-flash}}]
  - name: gecho
    targets: [{{provider: gem-echo, model: gemini-2.5-flash}}]
  - name: "gem/*"
    targets: [{{provider: gem, model: "*"}}]
  - name: vchat
    targets: [{{provider: vertex, model: gemini-2.5-pro}}]
  - name: gembed
    targets: [{{provider: gem-echo, model: gemini-embedding-001}}]
  - name: vembed
    targets: [{{provider: vertex, model: text-embedding-005}}]
routing: {{timeout_s: 2, stream_idle_timeout_s: 2, retries: 0, cooldown: {{after_failures: 1000}}}}
"""


@asynccontextmanager
async def gemini_gateway(simulator: RunningSimulator) -> AsyncIterator[str]:
    config = config_from_yaml(
        gateway_yaml(simulator.root_url), GEMINI_KEY=GEMINI_KEY, VERTEX_TOKEN=VERTEX_TOKEN
    )
    async with running_gateway(config) as url:
        yield url


async def last_echo(simulator: RunningSimulator) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{simulator.root_url}/sim/echoes") as response,
    ):
        echoes: list[dict[str, Any]] = await response.json()
    return echoes[-1]
