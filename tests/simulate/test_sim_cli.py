"""``lockgate simulate`` as a real process, with one and with several workers."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import psutil
import pytest
import typer
from typer.testing import CliRunner

from lockgate.cli.simulate import register
from tests.simulate.sim_helpers import AUTH, chat_body

# A minimal host CLI, so the test does not depend on the rest of lockgate's CLI.
_HOST_CLI = (
    "import typer\n"
    "from lockgate.cli.simulate import register\n"
    "app = typer.Typer()\n"
    "app.callback()(lambda: None)\n"
    "register(app)\n"
    "app()\n"
)


def _cli_app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def test_help_lists_options() -> None:
    result = CliRunner().invoke(_cli_app(), ["simulate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--host", "--port", "--latency-ms", "--tokens-per-s", "--tokens", "--workers"):
        assert option in result.output


@pytest.mark.parametrize("workers", [1, 2])
async def test_cli_serves_and_stops(workers: int) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-u",
        "-c",
        _HOST_CLI,
        "simulate",
        "--port",
        "0",
        "--tokens",
        "3",
        "--workers",
        str(workers),
        stdout=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "PATH": ""},
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 15)).decode()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
        assert match, line
        base_url = match.group(0)
        assert len(psutil.Process(process.pid).children()) == (workers if workers > 1 else 0)

        # Fresh connections each time, so SO_REUSEPORT spreads them over the workers.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(10):
                async with http.post(
                    f"{base_url}/chat/completions", json=chat_body(), headers=AUTH
                ) as resp:
                    assert resp.status == 200
                    body = await resp.json()
                    assert body["choices"][0]["message"]["content"] == "Simulated reply to:"
        children = psutil.Process(process.pid).children()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) in (0, 128 + signal.SIGTERM)
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == []
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
