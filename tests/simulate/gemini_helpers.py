"""Helpers for the simulator's Gemini-format tests: URLs, requests and SSE reading."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from lockgate.simulate.server import RunningSimulator

KEY = {"x-goog-api-key": "AIza-test-key"}
HELLO = {"contents": [{"role": "user", "parts": [{"text": "What is the capital of France?"}]}]}
WEATHER = {
    "functionDeclarations": [
        {
            "name": "get_weather",
            "description": "Weather in a city.",
            "parameters": {
                "type": "OBJECT",
                "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"}},
                "required": ["city"],
            },
        }
    ]
}
VERTEX = "/v1/projects/my-project/locations/us-central1/publishers/google/models"


def gemini_url(sim: RunningSimulator, model: str, method: str = "generateContent") -> str:
    return f"{sim.root_url}/v1beta/models/{model}:{method}"


async def post(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=KEY if headers is None else headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def sse(http: aiohttp.ClientSession, url: str, body: Any, **headers: str) -> list[Any]:
    """The events of a complete Gemini SSE answer (checking the CRLF framing)."""
    async with http.post(url, json=body, headers={**KEY, **headers}) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = (await resp.read()).decode()
    assert text.endswith("\r\n\r\n")
    events = text[: -len("\r\n\r\n")].split("\r\n\r\n")
    assert all(event.startswith("data: ") for event in events)
    return [json.loads(event[len("data: ") :]) for event in events]
