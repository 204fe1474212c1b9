"""Lua scripts run by SHA: one round trip per call, reloaded when the server has forgotten them
(a restart, `SCRIPT FLUSH`, a failover to a replica that never saw them)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

__all__ = ["LuaScript", "decode_reply"]


class LuaScript:
    def __init__(self, client: Redis, source: str) -> None:
        self._client = client
        self._source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[str | int]) -> list[str]:
        try:
            reply = await self._client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # EVAL runs the script and caches it under the same SHA for the next calls.
            reply = await self._client.eval(self._source, len(keys), *keys, *args)
        return decode_reply(reply)


def decode_reply(reply: object) -> list[str]:
    """A flat array reply as text, whether or not the client decodes responses."""
    if not isinstance(reply, list):
        raise TypeError(f"expected an array reply from the script, got {type(reply).__name__}")
    items = []
    for item in reply:
        if isinstance(item, bytes):
            items.append(item.decode())
        elif isinstance(item, str | int):
            items.append(str(item))
        else:
            raise TypeError(f"unexpected item in the script's reply: {item!r}")
    return items
