"""Shared pieces of the rate-limit and budget end-to-end tests: configs, keys, clients, Redis.

Configs are built as dicts and handed to the loader as JSON (which is YAML), so each test says
only what differs: its keys, teams, prices and storage. The provider is always the built-in
simulator behind a catch-all model `*` -> `*`, so a client scripts the upstream through the model
name (`m?tokens=60&latency_ms=500`) and per-model limit globs see that name.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
from redis.asyncio import Redis

from lockgate.auth.keys import hash_key
from lockgate.config.models import GatewayConfig
from tests.conftest import config_from_yaml

__all__ = [
    "ADMIN_KEY",
    "USER",
    "admin_get",
    "anthropic_client",
    "config_document",
    "delete_prefix",
    "gateway_config",
    "key",
    "limit_counters",
    "openai_client",
    "ratelimit_headers",
    "secret",
    "team",
    "unique_name",
    "unique_prefix",
]

USER: list[Any] = [{"role": "user", "content": "hello"}]
"""A prompt the gateway estimates at 6 input tokens (2 for the text, 4 for the message) and the
simulator reports as 5 (2 for the text, 3 for the message)."""
ADMIN_KEY = "access-tests-admin-key-0123456789"

ResponseHook = Callable[[httpx2.Response], Awaitable[None]]


def secret(name: str) -> str:
    """The plaintext API key of the declared key `name`."""
    return f"lg-access-test-{name}"


def unique_name(stem: str) -> str:
    """A key or team name no other test (or earlier run on a shared database) uses."""
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def key(
    name: str,
    *,
    team: str | None = None,
    limits: Mapping[str, Any] | None = None,
    budget: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A declared key (`keys:` entry) whose plaintext is `secret(name)`."""
    entry: dict[str, Any] = {"name": name, "hash": hash_key(secret(name))}
    if team is not None:
        entry["team"] = team
    if limits is not None:
        entry["limits"] = dict(limits)
    if budget is not None:
        entry["budget"] = dict(budget)
    return entry


def team(
    name: str,
    *,
    limits: Mapping[str, Any] | None = None,
    budget: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name}
    if limits is not None:
        entry["limits"] = dict(limits)
    if budget is not None:
        entry["budget"] = dict(budget)
    return entry


def config_document(
    *,
    keys: Sequence[Mapping[str, Any]],
    teams: Sequence[Mapping[str, Any]] = (),
    price: tuple[float, float] | None = None,
    storage: Mapping[str, Any] | None = None,
    alerts: Sequence[str] = (),
    server: Mapping[str, Any] | None = None,
    models: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A whole gateway config; `price` is (input, output) USD per million tokens of the
    catch-all model, which `models` replaces."""
    model: dict[str, Any] = {"name": "*", "targets": [{"provider": "sim", "model": "*"}]}
    if price is not None:
        model["price"] = {"input": price[0], "output": price[1]}
    document: dict[str, Any] = {
        "server": {"admin_key": ADMIN_KEY, **(server or {})},
        "providers": [{"name": "sim", "type": "simulator"}],
        "models": [dict(entry) for entry in models] if models is not None else [model],
        "keys": [dict(entry) for entry in keys],
        "teams": [dict(entry) for entry in teams],
        "alerts": [{"url": url} for url in alerts],
    }
    if storage is not None:
        document["storage"] = dict(storage)
    return document


def gateway_config(**parts: Any) -> GatewayConfig:
    """`config_document(**parts)` validated by the same loader `lockgate.yaml` goes through."""
    return config_from_yaml(json.dumps(config_document(**parts)))


@asynccontextmanager
async def openai_client(
    url: str,
    key_name: str,
    *,
    max_retries: int = 0,
    on_response: ResponseHook | None = None,
) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK on its aiohttp transport; `on_response` sees every HTTP response it
    gets, retries included."""
    hooks: dict[str, list[Any]] = {"response": [on_response]} if on_response else {}
    async with openai.AsyncOpenAI(
        base_url=f"{url}/v1",
        api_key=secret(key_name),
        max_retries=max_retries,
        timeout=30,
        http_client=openai.DefaultAioHttpClient(event_hooks=hooks),
    ) as client:
        yield client


@asynccontextmanager
async def anthropic_client(url: str, key_name: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=url, api_key=secret(key_name), max_retries=0, timeout=30
    ) as client:
        yield client


def ratelimit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The `x-ratelimit-*` headers of a response, by name."""
    return {
        name.lower(): value
        for name, value in headers.items()
        if name.lower().startswith("x-ratelimit-")
    }


def unique_prefix() -> str:
    """A Redis key prefix of one test: tests share a Redis and keep apart by prefix."""
    return f"lockgate-access-test:{uuid.uuid4().hex[:12]}:"


async def delete_prefix(redis_url: str, prefix: str) -> None:
    """Remove a test's Redis keys (never FLUSHDB: other tests share the server)."""
    client = Redis.from_url(redis_url)
    try:
        keys = [name async for name in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def admin_get(url: str, path: str) -> Any:
    """GET an admin API path with the admin key; the decoded JSON."""
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}{path}", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def limit_counters(url: str, scope: str) -> dict[str, Any]:
    """The live counters of one quota (`key:NAME`, `team:NAME`) from `/admin/limits`."""
    for entry in await admin_get(url, "/admin/limits"):
        if entry["scope"] == scope:
            counters: dict[str, Any] = entry["counters"]
            return counters
    raise AssertionError(f"/admin/limits lists no quota {scope!r}")
