"""Cheap, unverified reading of a compact JWS: enough to pick the issuer and key, nothing more.

Nothing read here is trusted. The header names the algorithm and key id, the payload names the
issuer; the signature and every claim are checked afterwards against the issuer's own keys.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["MAX_TOKEN_CHARS", "UnverifiedToken", "looks_like_jwt", "read_unverified"]

MAX_TOKEN_CHARS = 16 * 1024
"""Longest token accepted. GitLab's ID tokens are about 1.5 KiB; the bound keeps a hostile
token from costing more than a few microseconds of decoding."""

_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def looks_like_jwt(token: str) -> bool:
    """Three base64url segments separated by dots: a JWT rather than an API key.

    An empty signature still counts (an `alg: none` token is a JWT, and is refused as one).
    """
    return _COMPACT_JWS.fullmatch(token) is not None


@dataclass(frozen=True, slots=True)
class UnverifiedToken:
    header: Mapping[str, Any]
    claims: Mapping[str, Any]


def read_unverified(token: str) -> UnverifiedToken | None:
    """The decoded header and payload, or None when the token is not a well-formed JWS."""
    if len(token) > MAX_TOKEN_CHARS or not looks_like_jwt(token):
        return None
    header_part, payload_part, _ = token.split(".")
    header = _json_object(header_part)
    claims = _json_object(payload_part)
    if header is None or claims is None:
        return None
    return UnverifiedToken(header, claims)


def _json_object(segment: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        return None
    return value if isinstance(value, dict) else None
