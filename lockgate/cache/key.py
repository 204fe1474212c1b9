"""What makes two requests the same for the cache, and whose cache an answer lands in."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from lockgate.auth.policy import Principal

__all__ = ["NON_SEMANTIC_FIELDS", "cache_key", "cache_scope"]

NON_SEMANTIC_FIELDS = frozenset(
    {
        "user",
        "stream",
        "stream_options",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
    }
)
"""Fields that change who asked or how the answer travels, never what it says."""


def cache_scope(principal: Principal) -> str:
    """Answers are shared within a team; a caller outside any team has its own."""
    if principal.team is not None:
        return f"team:{principal.team}"
    return f"{principal.kind}:{principal.name}"


def cache_key(form: str, scope: str, raw: Mapping[str, Any]) -> str:
    """A digest of the request's semantic fields (key order ignored), per format and scope.

    The client format is part of the key because the cached bytes are in that format.
    """
    semantic = {name: value for name, value in raw.items() if name not in NON_SEMANTIC_FIELDS}
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{form}\0{scope}\0".encode())
    digest.update(orjson.dumps(semantic, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()
