"""Helpers shared by the `cohere` adapter tests (fixtures: fixtures/cohere/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lockgate.providers.cohere import CohereAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "cohere"
ROOT = "https://api.cohere.com"
MODEL = "command-a-03-2025"
KEY = "sk-cohere-secret-0000"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def adapter(drop: bool = False) -> CohereAdapter:
    return CohereAdapter("co", ROOT, KEY, drop_unsupported=drop)


def translate(body: dict[str, Any], drop: bool = False) -> dict[str, Any]:
    return json.loads(adapter(drop).chat_request(body, MODEL).body)  # type: ignore[no-any-return]
