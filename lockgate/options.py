"""Per-request controls a caller sets with `x-lockgate-*` headers (DESIGN §3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from lockgate.config.protection import MAX_TTL_S
from lockgate.errors import BadRequest
from lockgate.routing.facts import parse_tags

__all__ = ["CacheMode", "RequestOptions"]

CacheMode = Literal["default", "no-cache", "no-store"]
"""`no-cache`: answer fresh (and keep that answer); `no-store`: do not keep this answer."""

_MODES: dict[bytes, CacheMode] = {b"no-cache": "no-cache", b"no-store": "no-store"}


@dataclass(frozen=True, slots=True)
class RequestOptions:
    tags: Mapping[str, str] = field(default_factory=dict)
    cache: CacheMode = "default"
    cache_ttl_s: float | None = None

    @classmethod
    def from_headers(
        cls, tags: bytes | None, cache: bytes | None, cache_ttl: bytes | None
    ) -> RequestOptions:
        """The values of `x-lockgate-tags`, `x-lockgate-cache` and `x-lockgate-cache-ttl`."""
        if tags is None and cache is None and cache_ttl is None:
            return DEFAULT
        mode: CacheMode = "default"
        if cache is not None:
            found = _MODES.get(cache.strip().lower())
            if found is None:
                raise BadRequest(
                    "Header x-lockgate-cache must be no-cache or no-store",
                    param="x-lockgate-cache",
                )
            mode = found
        return cls(parse_tags(tags), mode, _ttl(cache_ttl))


DEFAULT = RequestOptions()


def _ttl(value: bytes | None) -> float | None:
    if value is None:
        return None
    try:
        ttl = float(value)
    except ValueError:
        ttl = -1.0
    if not 0 < ttl <= MAX_TTL_S:
        raise BadRequest(
            f"Header x-lockgate-cache-ttl must be a number of seconds, above 0 and at most "
            f"{MAX_TTL_S:g}",
            param="x-lockgate-cache-ttl",
        )
    return ttl
