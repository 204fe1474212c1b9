"""The `lockgate` command as a user runs it: a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import free_port, kill_with_workers, wait_ready


def lockgate(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockgate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def test_config_check_valid(tmp_path: Path) -> None:
    path = tmp_path / "lockgate.yaml"
    path.write_text(
        "providers: [{name: o, type: openai}]\nmodels: [{name: m, targets: [{provider: o, model: x}]}]\n"
    )
    result = lockgate("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert "1 providers, 1 models" in result.stdout


def test_config_check_invalid_lists_every_error(tmp_path: Path) -> None:
    path = tmp_path / "lockgate.yaml"
    path.write_text("server:\n  wokers: 2\nrouting: {timeout_s: -1}\n")
    result = lockgate("config", "check", str(path))
    assert result.returncode == 1
    assert (
        f"{path}:2: server.wokers: unknown key 'wokers' (did you mean 'workers'?)" in result.stderr
    )
    assert f"{path}:3: routing.timeout_s: Input should be greater than 0" in result.stderr
    assert "2 errors" in result.stderr


def test_config_schema_is_json_schema() -> None:
    result = lockgate("config", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert {"server", "providers", "models", "routing"} <= set(schema["properties"])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"OPENAI_API_KEY", "OLLAMA_HOST"}}
    env["OLLAMA_HOST"] = f"127.0.0.1:{free_port()}"
    env.update(extra)
    return env


@pytest.fixture
def demo_gateway(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`lockgate serve` in an empty folder with no provider in the environment."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lockgate",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        cwd=tmp_path,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process)
    try:
        yield url, process
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            kill_with_workers(process)
            process.communicate(timeout=10)


def test_serve_without_config_runs_the_simulator_demo(
    demo_gateway: tuple[str, subprocess.Popen[str]],
) -> None:
    url, process = demo_gateway
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
    for _ in range(4):  # several requests so both workers answer
        reply = client.chat.completions.create(
            model="demo-chat", messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content
    assert [m.id for m in client.models.list()] == ["demo-chat", "demo-embedding"]
    process.terminate()
    output = process.communicate(timeout=30)[0]
    assert "SIMULATOR" in output
    assert "set OPENAI_API_KEY" in output
    assert "2 workers" in output


def test_serve_reports_config_errors_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "lockgate.yaml").write_text("server: {workers: 0}\n")
    result = lockgate("serve", cwd=tmp_path, env=_clean_env())
    assert result.returncode == 1
    assert (
        "lockgate.yaml:1: server.workers: Input should be greater than or equal to 1"
        in result.stderr
    )


def test_serve_refuses_a_proxy_variable_it_cannot_use(tmp_path: Path) -> None:
    env = _clean_env(HTTPS_PROXY="socks5://svc:hunter2@proxy.corp:1080")
    env.pop("https_proxy", None)  # the lower-case name would win
    result = lockgate("serve", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert (
        "lockgate: HTTPS_PROXY (a socks5:// proxy): only http:// proxies are supported"
        in result.stderr
    )
    assert "hunter2" not in result.stderr + result.stdout


def test_serve_says_which_proxy_it_uses_without_its_password(tmp_path: Path) -> None:
    port = free_port()
    env = _clean_env(HTTPS_PROXY="http://svc:hunter2@proxy.corp:3128", NO_PROXY="localhost")
    for name in ("https_proxy", "no_proxy", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "lockgate", "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert (
        "outbound proxy: proxy.corp:3128 for https (HTTPS_PROXY); reached directly: localhost"
        in output
    )
    assert "hunter2" not in output
