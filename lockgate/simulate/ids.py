"""Identifiers in OpenAI's formats."""

from __future__ import annotations

from random import getrandbits

SYSTEM_FINGERPRINT = "fp_lockgate_sim"


def completion_id() -> str:
    return f"chatcmpl-sim-{getrandbits(96):024x}"


def tool_call_id() -> str:
    return f"call_{getrandbits(96):024x}"
