"""A real forward proxy on loopback (proxy.py, a test dependency), for the outbound proxy tests.

It asks for Basic credentials, so an answer that got through proves the gateway sent them, and
its access log shows what went through it.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER, PASSWORD = "gateway", "s3cret-proxy-pass"


@dataclass(frozen=True)
class RunningProxy:
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, credentials: str | None = f"{USER}:{PASSWORD}") -> str:
        """The proxy's URL as an operator writes it in HTTPS_PROXY (with credentials)."""
        return f"http://{credentials}@{self.address}" if credentials else f"http://{self.address}"

    async def logged(self, text: str, timeout_s: float = 5) -> bool:
        """Does its access log show `text`? It writes a line as a connection ends, so this
        waits a little, letting the test's event loop run (to finish closing a TLS
        connection, for one)."""
        deadline = time.monotonic() + timeout_s
        while text not in self.log.read_text():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


@pytest.fixture(scope="session")
def http_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    directory = tmp_path_factory.mktemp("proxy")
    port_file, log = directory / "port", directory / "access.log"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0"),
            *("--port-file", str(port_file), "--basic-auth", f"{USER}:{PASSWORD}"),
            *("--num-workers", "1", "--num-acceptors", "1", "--log-file", str(log)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"proxy.py did not start: {log.read_text()}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        while True:  # the port file may be written before the socket listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield RunningProxy(port, log)
    finally:
        process.terminate()
        process.wait(timeout=30)
