"""Helpers shared by the `gemini` adapter conformance tests (fixtures: fixtures/gemini/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lockgate.providers.gemini import GeminiAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
KEY = "AIzaSyD-gemini-secret-key-0123456789"
ROOT = "https://generativelanguage.googleapis.com"
USER = [{"role": "user", "content": "Hello"}]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def adapter(drop: bool = False) -> GeminiAdapter:
    return GeminiAdapter("gem", ROOT, KEY, drop_unsupported=drop)


def translate(body: dict[str, Any], drop: bool = False) -> dict[str, Any]:
    return json.loads(adapter(drop).chat_request(body, "gemini-2.5-flash").body)  # type: ignore[no-any-return]


def without_ids(completion: dict[str, Any]) -> dict[str, Any]:
    """The completion minus `created` and generated tool call ids (checked to look right)."""
    completion = {k: v for k, v in completion.items() if k != "created"}
    for choice in completion["choices"]:
        for call in choice["message"].get("tool_calls") or []:
            assert call.pop("id").startswith("call_")
    return completion
