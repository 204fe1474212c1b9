"""A gateway serving `/v1/messages` from OpenAI-, Gemini- and Anthropic-type targets, all the
session simulator. Shared by the test_messages_*.py modules."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp

from lockgate.simulate.server import RunningSimulator

KEY = "sk-sim-provider-secret-0c3e"
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TARGETS = ["gpt", "gem", "claude"]
"""One model per protocol: `<model>/<upstream>?directives` reaches the same provider."""


def gateway_yaml(sim: RunningSimulator) -> str:
    root = sim.root_url
    echo = '{x-sim-echo-headers: "1"}'
    return f"""
providers:
  - {{name: oai, type: openai, base_url: "{sim.base_url}", api_key: "${{KEY}}", headers: {echo}}}
  - {{name: gem, type: gemini, base_url: "{root}", api_key: "${{KEY}}", headers: {echo}}}
  - {{name: ant, type: anthropic, base_url: "{root}", api_key: "${{KEY}}", headers: {echo}}}
models:
  - name: gpt
    targets: [{{provider: oai, model: sim-small}}]
  - name: gem
    targets: [{{provider: gem, model: gemini-2.0-flash}}]
  - name: claude
    targets: [{{provider: ant, model: claude-sim}}]
  - name: "gpt/*"
    targets: [{{provider: oai, model: "*"}}]
  - name: "gem/*"
    targets: [{{provider: gem, model: "*"}}]
  - name: "claude/*"
    targets: [{{provider: ant, model: "*"}}]
routing: {{timeout_s: 2, stream_idle_timeout_s: 2, retries: 0}}
"""


def with_directives(model: str, directives: str) -> str:
    """`model` on the same provider, with simulator directives (`tokens=5&tool_call=1`)."""
    upstream = {"gpt": "sim-small", "gem": "gemini-2.0-flash", "claude": "claude-sim"}[model]
    return f"{model}/{upstream}?{directives}"


def unique(text: str) -> str:
    """`text` with a marker that finds this request in the simulator's echo log."""
    return f"{text} [{uuid.uuid4().hex[:12]}]"


async def received(simulator: RunningSimulator, marker: str) -> dict[str, Any]:
    """What the simulator received for the request whose body holds `marker`."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{simulator.root_url}/sim/echoes") as resp,
    ):
        echoes = await resp.json()
    matching = [echo for echo in echoes if marker in json.dumps(echo["body"])]
    assert len(matching) == 1, f"{len(matching)} echoes hold {marker!r}"
    return matching[0]  # type: ignore[no-any-return]
