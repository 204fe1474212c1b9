"""A bare forwarder, for scale: uvicorn + aiohttp, no features (the `forwarder` variant).

The issue's reference point for what any Python gateway costs: it passes each request body to
the upstream as it is and streams the answer back, without parsing, auth, routing or accounting.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

UPSTREAM = os.environ["FORWARD_TO"]
session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                session = aiohttp.ClientSession(UPSTREAM)
                await send({"type": "lifespan.startup.complete"})
            else:
                if session is not None:
                    await session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["method"] == "GET":  # readiness
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    assert session is not None
    headers = {"content-type": "application/json", "authorization": "Bearer bench-key"}
    async with session.post(scope["path"], data=body, headers=headers) as upstream:
        content_type = upstream.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": upstream.status,
                "headers": [(b"content-type", content_type)],
            }
        )
        async for chunk in upstream.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
