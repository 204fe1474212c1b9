"""Deterministic unit-length embedding vectors derived from a hash of the input."""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array

_BIG_ENDIAN = sys.byteorder == "big"


def _input_bytes(item: str | list[int]) -> bytes:
    if isinstance(item, str):
        return b"s:" + item.encode()
    return b"t:" + ",".join(map(str, item)).encode()


def embedding_vector(item: str | list[int], dims: int) -> array[float]:
    """float32 vector with unit L2 norm; same input and dims -> same vector."""
    raw = array("h", hashlib.shake_128(_input_bytes(item)).digest(2 * dims))
    if _BIG_ENDIAN:
        raw.byteswap()
    norm = math.sqrt(math.fsum(value * value for value in raw)) or 1.0
    return array("f", (value / norm for value in raw))


def encode_base64(vector: array[float]) -> str:
    """Little-endian float32 bytes, base64-encoded, as OpenAI's ``encoding_format=base64``."""
    if _BIG_ENDIAN:
        vector = array("f", vector)
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode("ascii")
