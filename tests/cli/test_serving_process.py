"""What a serving process holds: `lockgate serve` becomes `lockgate.worker` (same pid), which
loads the gateway and nothing of the command line, Alembic, Redis or the optional features."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import openai

from tests.conftest import free_port, wait_ready

NOT_FOR_SERVING = {
    "typer",  # the command line
    "rich",
    "alembic",  # migrations: done before the workers start
    "mako",
    "sqlalchemy",  # the serving path runs on the drivers; admin writes and reports load it
    "pygments",
    "fastapi",  # the admin API: loaded on its first request
    "redis",  # not configured here
    "opentelemetry",  # tracing off
    "jinja2",  # no prompts
    "jsonschema",
    "semver",
    "gitlab",
    "aiohttp",  # providers are called through transport/http1.py; no webhooks or OIDC here
    "numpy",
    "torch",
}

CONFIG = """
providers:
  - {name: demo, type: simulator}
models:
  - {name: chat, targets: [{provider: demo, model: sim-small}]}
"""

PROVIDER_CONFIG = """
providers:
  - {name: up, type: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-unused}
models:
  - {name: chat, targets: [{provider: up, model: gpt-4o-mini}]}
"""
"""A real provider instead of the in-process simulator (which is an aiohttp server)."""


def test_one_worker_serves_from_the_same_process_without_the_command_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "lockgate.yaml").write_text(CONFIG)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lockgate", "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        # The pid `lockgate serve` started with now runs the worker module (exec).
        argv = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[1:3] == [b"-m", b"lockgate.worker"]
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        reply = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    # uvicorn shuts down gracefully, then ends by the signal it caught, as a process should.
    assert process.returncode == -signal.SIGTERM, output
    assert "listening on" in output
    assert "Application shutdown complete" in output
    # The database was migrated before the worker started (by a short-lived child).
    assert (tmp_path / "lockgate.db").stat().st_size > 0


def test_a_serving_process_loads_only_what_it_serves(tmp_path: Path) -> None:
    config = tmp_path / "lockgate.yaml"
    database = f"sqlite:///{tmp_path}/lockgate.db"
    migrated = subprocess.run(
        [sys.executable, "-m", "lockgate.storage.migrate"],
        input=database,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    config.write_text(PROVIDER_CONFIG + f"storage: {{database: '{database}'}}\n")
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        from lockgate.worker import worker_app

        app = worker_app()

        async def main():
            inbox = asyncio.Queue()
            for message in ("lifespan.startup", "lifespan.shutdown"):
                inbox.put_nowait({"type": message})
            sent = []
            async def send(message):
                sent.append(message["type"])
            scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
            await app(scope, inbox.get, send)
            return sent

        sent = asyncio.run(main())
        print(json.dumps({"sent": sent, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
        """
    )
    env = {**os.environ, "LOCKGATE_CONFIG_SOURCE": f"file:{config}"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["sent"] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert "lockgate" in report["modules"]
    assert NOT_FOR_SERVING.isdisjoint(report["modules"]), NOT_FOR_SERVING & set(report["modules"])
