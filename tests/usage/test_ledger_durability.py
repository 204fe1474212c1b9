"""No usage record is lost: not when the gateway is stopped under load, not while its database is
down. Counted against what clients really received."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from sqlalchemy.engine import make_url

from tests.access.admin_helpers import lockgate_serve, wait_for
from tests.conftest import config_from_yaml, running_gateway
from tests.storage.raw import query
from tests.usage.tcp_proxy import TcpProxy

BODY = b'{"model": "m", "messages": [{"role": "user", "content": "count me"}]}'


def gateway_yaml(database: str, journal: Path, latency_ms: int) -> str:
    return f"""
storage: {{database: "{database}", journal_dir: "{journal}"}}
providers: [{{name: sim, type: simulator, latency_ms: {latency_ms}}}]
models: [{{name: m, targets: [{{provider: sim, model: sim-small}}]}}]
observability: {{access_log: false}}
"""


class Load:
    """`clients` loops sending chat completions, each tagged `x-request-id: <run>-<n>`, until
    `stop()` or until the gateway stops answering; counts the answers that arrived whole."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.clients = clients
        self.run = uuid.uuid4().hex[:12]
        self.completed = 0
        self._stopping = False
        self._sent = 0

    async def __call__(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.clients)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(self._loop(session) for _ in range(self.clients)))

    def stop(self) -> None:
        self._stopping = True

    async def _loop(self, session: aiohttp.ClientSession) -> None:
        while not self._stopping:
            self._sent += 1
            headers = {
                "content-type": "application/json",
                "x-request-id": f"{self.run}-{self._sent}",
            }
            try:
                async with session.post(
                    f"{self.url}/v1/chat/completions", data=BODY, headers=headers
                ) as answer:
                    await answer.read()
            except (aiohttp.ClientError, OSError):
                if self._stopping:
                    return
                await asyncio.sleep(0.01)  # the gateway is going away: try until it is gone
                continue
            self.completed += 1


async def ledger_rows(database: str, run: str) -> int:
    rows = await query(
        database,
        "SELECT count(*), count(DISTINCT client_request_id) FROM usage "
        "WHERE client_request_id LIKE :run",
        {"run": f"{run}-%"},
    )
    total, distinct = rows[0]
    assert total == distinct, "a request was recorded twice"
    return int(total)


async def during(load: Load, seconds: float, action: Callable[[], Awaitable[None]]) -> None:
    """Run `action` after `seconds` of load."""
    await asyncio.sleep(seconds)
    await action()


async def test_sigterm_under_load_loses_no_record(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = tmp_path / "lockgate.yaml"
    config.write_text(gateway_yaml(database, tmp_path / "journal", latency_ms=30))
    with lockgate_serve(config, log=tmp_path / "serve.log") as (url, process):
        load = Load(url, clients=32)
        running = asyncio.get_running_loop().create_task(load())
        await asyncio.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        while process.poll() is None:
            assert time.monotonic() - started < 30, "the gateway did not stop"
            await asyncio.sleep(0.05)
        load.stop()
        await running
        # uvicorn re-raises the signal once its graceful shutdown is complete.
        assert process.returncode in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()
        assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
    assert load.completed > 100  # it was under load when it stopped
    assert await ledger_rows(database, load.run) == load.completed
    assert not list((tmp_path / "journal").glob("usage-*"))  # all of it reached the database


async def test_a_database_down_for_ten_seconds_under_load_loses_no_record(
    tmp_path: Path, postgres_url: str
) -> None:
    server = make_url(postgres_url)
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    await proxy.start()
    proxied = server.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    journal = tmp_path / "journal"
    config = config_from_yaml(gateway_yaml(proxied, journal, latency_ms=5))
    try:
        async with running_gateway(config) as url:
            load = Load(url, clients=8)
            running = asyncio.get_running_loop().create_task(load())
            await asyncio.sleep(1)
            await proxy.cut()
            await asyncio.sleep(10)
            during_outage = load.completed
            assert list(journal.glob("usage-*")), "nothing was journaled while it was down"
            await proxy.restore()
            await asyncio.sleep(2)
            load.stop()
            await running
            assert during_outage > 100  # requests went on while the database was down

            async def all_rows() -> int | None:
                rows = await ledger_rows(postgres_url, load.run)
                return rows if rows >= load.completed else None

            rows, _ = await wait_for(all_rows, 30, interval_s=0.5)
            assert rows == load.completed
        assert not list(journal.glob("usage-*"))
        assert await ledger_rows(postgres_url, load.run) == load.completed
    finally:
        await proxy.close()
