"""Real Redis and PostgreSQL for the tests that need them.

Each is found in this order: the URL in `LOCKGATE_TEST_REDIS_URL` / `LOCKGATE_TEST_POSTGRES_URL`;
the server on its usual loopback port; a throwaway server started from the local binaries
(pytest-redis / pytest-postgresql process executors). When none works the run stops with a
message that says what to install: these tests are never skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

__all__ = ["postgres_server_url", "redis_server_url"]

REDIS_HINT = (
    "the tests need Redis: start one on 127.0.0.1:6379, set LOCKGATE_TEST_REDIS_URL, "
    "or install redis-server (e.g. 'apt-get install redis-server') so the tests can start one"
)
POSTGRES_HINT = (
    "the tests need PostgreSQL: start one on 127.0.0.1:5432 (trust auth, database 'test'), "
    "set LOCKGATE_TEST_POSTGRES_URL, or install the server binaries as a non-root user's "
    "tool (e.g. 'apt-get install postgresql') so the tests can start one"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """A Redis URL; tests keep apart by key prefix, never by flushing."""
    configured = os.environ.get("LOCKGATE_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    if _redis_answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.exit(REDIS_HINT, returncode=3)
    from pytest_redis.executor import RedisExecutor

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="lockgate-redis-") as datadir:
        executor = RedisExecutor(
            executable, 16, 30, "notice", "127.0.0.1", port, datadir=Path(datadir)
        )
        try:
            executor.start()
        except Exception as exc:
            pytest.exit(f"{REDIS_HINT} (starting {executable} failed: {exc})", returncode=3)
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            executor.stop()


def _postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this run, dropped at its end."""
    server = os.environ.get("LOCKGATE_TEST_POSTGRES_URL")
    if server is None:
        for candidate in (
            "postgresql://postgres@127.0.0.1:5432/test",
            "postgresql://127.0.0.1:5432/test",
        ):
            if _postgres_answers(candidate):
                server = candidate
                break
    if server is not None:
        yield from _fresh_database(server)
        return
    yield from _throwaway_postgres()


def _fresh_database(server: str) -> Iterator[str]:
    name = f"lockgate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _throwaway_postgres() -> Iterator[str]:
    pg_ctl = shutil.which("pg_ctl") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)), None
    )
    if pg_ctl is None:
        pytest.exit(POSTGRES_HINT, returncode=3)
    if os.geteuid() == 0:
        pytest.exit(f"{POSTGRES_HINT} (PostgreSQL refuses to start as root)", returncode=3)
    from pytest_postgresql.executors.proc import PostgreSQLExecutor

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="lockgate-postgres-") as root:
        executor = PostgreSQLExecutor(
            pg_ctl,
            "127.0.0.1",
            port,
            os.path.join(root, "data"),
            root,
            os.path.join(root, "postgres.log"),
            "-w",
            "test",
            user=os.environ.get("USER", "postgres"),
        )
        try:
            executor.start()
        except Exception as exc:
            pytest.exit(f"{POSTGRES_HINT} (starting {pg_ctl} failed: {exc})", returncode=3)
        try:
            server = f"postgresql://{executor.user}@127.0.0.1:{port}/postgres"
            yield from _fresh_database(server)
        finally:
            executor.stop()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """An empty database of its own for each test, made on the test server and dropped after."""
    name = f"lockgate_storage_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(postgres_server_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
