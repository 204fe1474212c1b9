"""Shared pieces of the identity, admin API and reload end-to-end tests.

Gateways run in-process (`tests.conftest.running_gateway`) in front of the built-in simulator;
clients are the official SDKs where a user would use one, and plain HTTP (aiohttp, or raw bytes
on a socket for headers no client library would send) for the admin API and malformed input.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import anthropic
import openai
import orjson
import psutil  # type: ignore[import-untyped]

from lockgate.auth.keys import hash_key
from lockgate.errors import Unauthenticated
from tests.conftest import descendants, free_port, is_ready

__all__ = [
    "ADMIN_KEY",
    "GENERIC_401",
    "USER",
    "Admin",
    "RawResponse",
    "anthropic_client",
    "base_yaml",
    "chat",
    "clean_env",
    "declared_key_yaml",
    "fresh_request",
    "lockgate_serve",
    "openai_client",
    "raw_request",
    "secret",
    "wait_for",
    "worker_pids",
]

ADMIN_KEY = "admin-key-for-access-tests-7f3a91"
"""The admin key of every gateway here that has one (at least 16 characters)."""
GENERIC_401 = Unauthenticated().message
"""The one message every refused credential gets."""
USER: list[Any] = [{"role": "user", "content": "hello"}]

T = TypeVar("T")


def secret(name: str) -> str:
    """The plaintext of the declared key `name` (the config holds only its hash)."""
    return f"lg-access-declared-{name}-0123456789abcdef"


def declared_key_yaml(name: str, **fields: str) -> str:
    """One entry of `keys:` in flow style; `fields` are YAML snippets, e.g. models='["m-*"]'."""
    parts = [f"name: {name}", f'hash: "{hash_key(secret(name))}"']
    parts += [f"{field}: {value}" for field, value in fields.items()]
    return "  - {" + ", ".join(parts) + "}\n"


def base_yaml(
    *,
    admin_key: bool = True,
    database: str | None = None,
    key_refresh_s: float | None = None,
    extra_models: str = "",
    server: str = "",
) -> str:
    """A simulator provider and three models (`m-small`, `m-large`, `other`), the first priced."""
    server_lines = []
    if admin_key:
        server_lines.append(f'  admin_key: "{ADMIN_KEY}"')
    if server:
        server_lines.append(server)
    text = ""
    if server_lines:
        text += "server:\n" + "\n".join(server_lines) + "\n"
    if database is not None:
        refresh = f", key_refresh_s: {key_refresh_s}" if key_refresh_s is not None else ""
        text += f'storage: {{database: "{database}"{refresh}}}\n'
    text += """providers: [{name: sim, type: simulator}]
routing: {retries: 0, timeout_s: 10}
models:
  - name: m-small
    targets: [{provider: sim, model: sim-small}]
    price: {input: 1000, output: 2000}
  - name: m-large
    targets: [{provider: sim, model: sim-large}]
  - name: other
    targets: [{provider: sim, model: sim-other}]
"""
    return text + extra_models


def openai_client(url: str, key: str) -> openai.AsyncOpenAI:
    """The OpenAI SDK (with its aiohttp transport) sending `key` as a bearer token."""
    return openai.AsyncOpenAI(
        base_url=f"{url}/v1",
        api_key=key,
        max_retries=0,
        timeout=30,
        http_client=openai.DefaultAioHttpClient(),
    )


def anthropic_client(url: str, key: str) -> anthropic.AsyncAnthropic:
    """The Anthropic SDK with `api_key`: it sends the key in `x-api-key`."""
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0, timeout=30)


async def chat(url: str, key: str, model: str = "m-small") -> str:
    """One chat completion through the OpenAI SDK; the model that answered (`model` field)."""
    async with openai_client(url, key) as client:
        reply = await client.chat.completions.create(model=model, messages=USER)
    assert reply.choices[0].message.content
    return reply.model


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


async def raw_request(
    url: str,
    method: str,
    path: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
) -> RawResponse:
    """One HTTP/1.1 request written byte for byte (header values no client library would send:
    non-ASCII, oversized), read until the server closes the connection."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        head = [
            f"{method} {path} HTTP/1.1".encode(),
            f"host: {parts.netloc}".encode(),
            b"connection: close",
            f"content-length: {len(body)}".encode(),
        ]
        if body:
            head.append(b"content-type: application/json")
        head += [name + b": " + value for name, value in headers]
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    header_block, _, payload = data.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    received = {}
    for line in lines:
        name, _, value = line.partition(":")
        received[name.strip().lower()] = value.strip()
    if received.get("transfer-encoding") == "chunked":
        payload = _unchunk(payload)
    return RawResponse(int(status_line.split()[1]), received, payload)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


class Admin:
    """The admin API over HTTP with a key (the admin key unless told otherwise)."""

    def __init__(self, url: str, key: str | None = ADMIN_KEY) -> None:
        self.url = url
        self.key = key

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        use_key: bool = True,
    ) -> tuple[int, Any]:
        """(status, the decoded JSON body; its text when it is not JSON; None when empty)."""
        headers = {}
        presented = key if key is not None else self.key
        if use_key and presented is not None:
            headers["authorization"] = f"Bearer {presented}"
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.url + path, json=body, headers=headers, allow_redirects=False
            ) as response,
        ):
            raw = await response.read()
            if not raw:
                return response.status, None
            try:
                return response.status, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return response.status, raw.decode(errors="replace")  # e.g. a bare 500

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, answer = await self.request(method, path, body)
        assert got == status, (method, path, got, answer)
        return answer


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], timeout_s: float, interval_s: float = 0.05
) -> tuple[T, float]:
    """Call `probe` every `interval_s` until it returns something other than None; that value
    and the seconds it took. Fails after `timeout_s`."""
    started = time.monotonic()
    while True:
        value = await probe()
        elapsed = time.monotonic() - started
        if value is not None:
            return value, elapsed
        assert elapsed < timeout_s, f"still waiting after {elapsed:.2f} s"
        await asyncio.sleep(interval_s)


def clean_env() -> dict[str, str]:
    """The environment for a `lockgate serve` process: no real provider found by accident."""
    env = {k: v for k, v in os.environ.items() if k not in {"OPENAI_API_KEY", "OLLAMA_HOST"}}
    env["OLLAMA_HOST"] = "127.0.0.1:9"  # discard port: nothing answers there
    return env


STARTED = "Application startup complete."
"""What uvicorn logs when a worker's startup (and so its SIGHUP handler) is done."""


@contextmanager
def lockgate_serve(
    config: Path,
    *args: str,
    log: Path,
    port: int | None = None,
    workers: int = 1,
    wait: bool = True,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`lockgate serve -c config --listen 127.0.0.1:<port> *args` as a real process (a free
    port unless given); yields its base URL and the process once /readyz answers 200 and all
    `workers` have started (at once when not `wait`). Output goes to `log`; the process (and
    its workers) is stopped on the way out, killed if need be."""
    port = port or free_port()
    with log.open("w") as output:
        command = [sys.executable, "-m", "lockgate", "serve", "-c", str(config)]
        process = subprocess.Popen(
            [*command, "--listen", f"127.0.0.1:{port}", *args],
            cwd=config.parent,
            env=clean_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            # Ready when /readyz answers and every worker has finished its startup (one that
            # answers does not mean the others have).
            while wait and (not is_ready(url) or log.read_text().count(STARTED) < workers):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"lockgate serve did not start:\n{log.read_text()}")
                time.sleep(0.1)
            yield url, process
        finally:
            children = descendants(process.pid)
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            for child in children:  # none should be left; make sure
                if child.is_running():
                    child.kill()


def worker_pids(pid: int) -> set[int]:
    """The worker processes of a `lockgate serve --workers N` supervisor."""
    return {child.pid for child in descendants(pid) if "spawn_main" in _command(child)}


def _command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def fresh_request(url: str, method: str, path: str, key: str | None = None) -> tuple[int, Any]:
    """A request without a body on a new connection each time (so a multi-worker server
    spreads them); (status, decoded JSON)."""
    request = urllib.request.Request(url + path, method=method, headers={"connection": "close"})
    if key is not None:
        request.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read() or b"null")
