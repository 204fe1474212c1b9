"""Virtual API keys: made from 256 random bits, kept only as a SHA-256 hash.

A plain (unsalted, fast) hash is enough for keys with this much entropy: no dictionary or
brute-force attack applies, and it lets a presented key be found by its hash in one lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["KEY_PREFIX", "display_prefix", "hash_key", "hashes_match", "new_key"]

KEY_PREFIX = "lg-"
HASH_SCHEME = "sha256:"


def new_key() -> str:
    """A fresh key: `lg-` and 43 URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """`sha256:<hex>`, the only form a key is stored in (config `keys[].hash`, database)."""
    return HASH_SCHEME + hashlib.sha256(key.encode()).hexdigest()


def hashes_match(presented: str, stored: str) -> bool:
    """Constant-time comparison of two stored-form hashes."""
    return hmac.compare_digest(presented.encode(), stored.encode())


def display_prefix(key: str) -> str:
    """The first characters of a key, safe to show in lists so a user can tell keys apart."""
    return key[: len(KEY_PREFIX) + 6]
