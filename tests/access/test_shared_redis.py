"""Global rate limits through Redis, as deployed: real `lockgate serve` processes.

Two gateways (or one with two workers) on the same config and Redis must enforce one limit
between them. A bucket of `rpm` refills at rpm/60 per second, so a burst admits `rpm` plus what
refilled while it ran: the expected count is rpm + elapsed * rpm / 60, within 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from lockgate.config.loader import load_config
from lockgate.config.references import shared_counters_problem
from lockgate.storage import Database
from tests.access.limits_helpers import (
    USER,
    config_document,
    delete_prefix,
    key,
    secret,
    unique_prefix,
)
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY = "shared-bot"
SPENDER = "shared-spender"
RESERVED_MICROS = 10_080
"""What a request of `SPENT` reserves: ceil(6 * 1.25) input tokens at $10 per million plus 100
output tokens at $100 per million (see test_budgets_e2e.py); it costs 10_050."""
SPENT = {"model": "m?tokens=100", "messages": USER, "max_tokens": 100}


def lockgate_env() -> dict[str, str]:
    """The environment without provider credentials that would change what `serve` builds."""
    return {k: v for k, v in os.environ.items() if k not in {"OPENAI_API_KEY", "OLLAMA_HOST"}}


def lockgate_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "lockgate", *args]


def write_config(path: Path, rpm: int, storage: dict[str, Any], **server: Any) -> Path:
    """A config file (JSON is YAML) with the simulator upstream, one key limited to `rpm` and
    one with a budget of 20 reservations."""
    budget = {"usd": 20 * RESERVED_MICROS / 1_000_000, "period": "total"}
    document = config_document(
        keys=[key(KEY, limits={"rpm": rpm}), key(SPENDER, budget=budget)],
        storage=storage,
        server=server or None,
        price=(10, 100),
    )
    path.write_text(json.dumps(document, indent=2))
    return path


@pytest.fixture
async def redis_storage(redis_server_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """Storage on a migrated SQLite file (so gateways starting together do not both migrate
    it) and this test's own prefix in the shared Redis."""
    database = f"sqlite:///{tmp_path / 'gateway.db'}"
    async with await Database.open(database):
        pass
    prefix = unique_prefix()
    yield {"database": database, "redis": redis_server_url, "redis_prefix": prefix}
    await delete_prefix(redis_server_url, prefix)


class Gateways:
    """`lockgate serve` processes started by a test, stopped (children too) when it ends.

    Their output goes to a file (a pipe nobody reads would fill up with access logs and stall
    them); it is shown when one fails to start."""

    def __init__(self, cwd: Path) -> None:
        self._cwd = cwd
        self._processes: list[asyncio.subprocess.Process] = []

    async def start(self, config: Path, *extra: str) -> str:
        port = free_port()
        log = self._cwd / f"serve-{port}.log"
        with log.open("w") as output:
            process = await asyncio.create_subprocess_exec(
                *lockgate_args("serve", "-c", str(config), "--listen", f"127.0.0.1:{port}", *extra),
                cwd=self._cwd,
                env=lockgate_env(),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self._processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while True:
                if process.returncode is not None:
                    raise AssertionError(f"lockgate serve exited: {log.read_text()}")
                assert time.monotonic() < deadline, f"not ready in 30 s: {log.read_text()}"
                try:
                    async with http.get(f"{url}/readyz") as response:
                        if response.status == 200:
                            return url
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    def workers(self, index: int) -> list[psutil.Process]:
        """The worker processes of the `index`th gateway (not multiprocessing's helpers)."""
        children = psutil.Process(self._processes[index].pid).children()
        return [child for child in children if "spawn_main" in " ".join(child.cmdline())]

    async def stop(self) -> None:
        """SIGTERM: a graceful shutdown, which writes the pending spend to the database."""
        processes, self._processes = self._processes, []
        for process in processes:
            children: list[psutil.Process] = []
            with contextlib.suppress(psutil.NoSuchProcess):
                children = psutil.Process(process.pid).children(recursive=True)
            if process.returncode is None:
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    if child.is_running():
                        child.kill()


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[Gateways]:
    running = Gateways(tmp_path)
    try:
        yield running
    finally:
        await running.stop()


async def burst(
    urls: Sequence[str],
    count: int,
    key_name: str = KEY,
    body: dict[str, Any] | None = None,
    refusal: str = "rate_limit_exceeded",
) -> tuple[Counter[tuple[str, int]], float]:
    """`count` chat requests at once, spread evenly over `urls`: (answers by (url, status),
    seconds from the first send to the last answer). A 429 must carry `refusal`."""
    headers = {"authorization": f"Bearer {secret(key_name)}"}
    body = body or {"model": "m", "messages": USER, "max_tokens": 5}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one(url: str) -> tuple[str, int]:
            async with http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as r:
                reply = await r.json()
                if r.status == 429:
                    assert reply["error"]["code"] == refusal
                else:
                    assert r.status == 200, reply
                return url, r.status

        started = time.monotonic()
        answers = await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(count)))
        elapsed = time.monotonic() - started
    return Counter(answers), elapsed


async def test_two_gateway_processes_sharing_redis_enforce_one_rpm_and_one_budget(
    tmp_path: Path, redis_storage: dict[str, Any], gateways: Gateways
) -> None:
    config = write_config(tmp_path / "lockgate.yaml", 100, redis_storage)
    urls = await asyncio.gather(gateways.start(config), gateways.start(config))

    answers, elapsed = await burst(urls, 300)

    accepted = sum(n for (_, status), n in answers.items() if status == 200)
    assert sum(answers.values()) == 300
    expected = 100 + elapsed * 100 / 60
    assert abs(accepted - expected) <= 2, (accepted, elapsed)
    # Each gateway was sent 150: counting alone, each would have admitted 100 of them.

    # 40 requests against a budget of 20 reservations: 20 pass between the two gateways
    # (each was sent 20, which alone it would all have admitted).
    answers, _ = await burst(urls, 40, SPENDER, SPENT, "budget_exceeded")
    assert sum(n for (_, status), n in answers.items() if status == 200) == 20
    await gateways.stop()
    async with await Database.open(redis_storage["database"]) as db:
        assert await db.spend.get_spend(f"key:{SPENDER}", "total") == 20 * 10_050


def test_several_workers_with_limits_and_no_redis_is_a_startup_error(tmp_path: Path) -> None:
    storage = {"database": f"sqlite:///{tmp_path / 'gateway.db'}"}
    one_worker = write_config(tmp_path / "one.yaml", 100, storage)
    two_workers = write_config(tmp_path / "two.yaml", 100, storage, workers=2)
    config = load_config(one_worker)
    assert shared_counters_problem(config) is None  # one worker counts correctly on its own
    server = config.server.model_copy(update={"workers": 2})
    problem = shared_counters_problem(config.model_copy(update={"server": server}))
    assert problem is not None

    def lockgate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            lockgate_args(*args),
            cwd=tmp_path,
            env=lockgate_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    port = free_port()
    serve = lockgate(
        "serve", "-c", str(one_worker), "--workers", "2", "--listen", f"127.0.0.1:{port}"
    )
    assert serve.returncode != 0
    assert "storage.redis" in serve.stderr
    assert problem in serve.stderr
    assert "Traceback" not in serve.stderr

    check = lockgate("config", "check", str(two_workers))
    assert check.returncode == 1
    assert "storage.redis" in check.stderr
    assert problem in check.stderr
    assert lockgate("config", "check", str(one_worker)).returncode == 0


async def test_two_workers_with_redis_enforce_one_rpm(
    tmp_path: Path, redis_storage: dict[str, Any], gateways: Gateways
) -> None:
    config = write_config(tmp_path / "lockgate.yaml", 30, redis_storage)
    url = await gateways.start(config, "--workers", "2")
    assert len(gateways.workers(0)) == 2

    answers, elapsed = await burst([url], 60)

    accepted = answers[(url, 200)]
    assert accepted + answers[(url, 429)] == 60
    expected = 30 + elapsed * 30 / 60
    assert abs(accepted - expected) <= 2, (accepted, elapsed)
