"""Embedding vectors in OpenAI's `encoding_format: base64`, shared by the translating adapters."""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Sequence

__all__ = ["float32_base64"]

_BIG_ENDIAN = sys.byteorder == "big"


def float32_base64(vector: Sequence[float]) -> str:
    """Little-endian float32 bytes of `vector`, base64-encoded (what OpenAI sends)."""
    packed = array("f", vector)
    if _BIG_ENDIAN:
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")
