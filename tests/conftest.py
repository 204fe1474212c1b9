"""Shared fixtures: a real simulator and real gateways on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
import uvicorn

from lockgate.app import LockgateApp, create_app
from lockgate.config.loader import parse_config
from lockgate.config.models import GatewayConfig, StorageConfig
from lockgate.serving import uvicorn_config
from lockgate.simulate.server import RunningSimulator, start_simulator
from lockgate.simulate.settings import SimulatorSettings

pytest_plugins = ["tests.services", "tests.proxy"]


@pytest.fixture(scope="session")
async def simulator() -> AsyncIterator[RunningSimulator]:
    sim = await start_simulator(SimulatorSettings())
    yield sim
    await sim.close()


def free_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_ready(url: str) -> bool:
    """Does the gateway at `url` answer /readyz with 200?"""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        return False


def wait_ready(url: str, process: subprocess.Popen[str], timeout_s: float = 30) -> None:
    """Wait until `process` (a gateway a test started, stdout piped) answers `url`/readyz.

    If it exits or does not answer in time, it and its workers are killed (a worker left alive
    would keep the output pipe open) and the test fails with what the gateway printed.
    """
    deadline = time.monotonic() + timeout_s
    while not is_ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            kill_with_workers(process)
            output, _ = process.communicate(timeout=10)
            raise AssertionError(f"gateway did not start: {output}")
        time.sleep(0.1)


def descendants(pid: int) -> list[psutil.Process]:
    """Every process `pid` started, and theirs (none when it is gone)."""
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def kill_with_workers(process: subprocess.Popen[Any]) -> None:
    """Kill `process` and every process it started."""
    children = descendants(process.pid)
    process.kill()
    for child in children:
        with contextlib.suppress(psutil.Error):  # gone already
            child.kill()


def config_from_yaml(text: str, **env: str) -> GatewayConfig:
    return parse_config(text, source="test.yaml", env=env)


DEFAULT_DATABASE = StorageConfig.model_fields["database"].default
DEFAULT_JOURNAL = StorageConfig.model_fields["journal_dir"].default


@asynccontextmanager
async def running_gateway(
    config: GatewayConfig, source: Path | None = None, **uvicorn_options: Any
) -> AsyncIterator[str]:
    """Serve `config` with uvicorn on an ephemeral loopback port; yields the base URL.

    A config on the default database gets a fresh SQLite file of its own, so no test sees
    another's keys (and ./lockgate.db is never written); the same for the usage journal.
    """
    with tempfile.TemporaryDirectory(prefix="lockgate-test-") as scratch:
        if config.storage.database == DEFAULT_DATABASE:
            fresh = {"database": f"sqlite:///{scratch}/lockgate.db"}
            if config.storage.journal_dir == DEFAULT_JOURNAL:
                fresh["journal_dir"] = f"{scratch}/journal"
            storage = config.storage.model_copy(update=fresh)
            config = config.model_copy(update={"storage": storage})
        async with _serve(create_app(config, source), **uvicorn_options) as url:
            yield url


@asynccontextmanager
async def _serve(app: LockgateApp, **uvicorn_options: Any) -> AsyncIterator[str]:
    options = {"host": "127.0.0.1", "port": 0, "loop": "none", "log_level": "warning"}
    server = uvicorn.Server(uvicorn_config(app, **{**options, **uvicorn_options}))
    task = asyncio.get_running_loop().create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        task.result()  # surfaces the startup error
        raise RuntimeError("gateway did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
