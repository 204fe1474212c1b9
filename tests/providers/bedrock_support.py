"""Helpers shared by the `bedrock` adapter tests (fixtures: fixtures/bedrock/).

ConverseStream fixtures are JSON lists of `[event type, payload]`; `frames` turns them into the
binary `application/vnd.amazon.eventstream` messages Bedrock sends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lockgate.providers.bedrock import AwsCredentials, BedrockAdapter
from lockgate.simulate.eventstream import event_message

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock"
ROOT = "https://bedrock-runtime.us-east-1.amazonaws.com"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
CREDENTIALS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def frames(name: str) -> bytes:
    """The binary event stream of a `stream_*.json` fixture."""
    return b"".join(event_message(kind, payload) for kind, payload in fixture(name))


def corrupt_crc(frame: bytes) -> bytes:
    """`frame` with its message CRC (last 4 bytes) off by one bit."""
    return frame[:-1] + bytes([frame[-1] ^ 1])


def adapter(drop: bool = False, credentials: AwsCredentials | None = CREDENTIALS) -> BedrockAdapter:
    return BedrockAdapter("br", ROOT, "us-east-1", credentials=credentials, drop_unsupported=drop)


def translate(body: dict[str, Any], drop: bool = False) -> dict[str, Any]:
    return json.loads(adapter(drop).chat_request(body, MODEL).body)  # type: ignore[no-any-return]
