"""The embedded default: file, else environment, else the simulator demo."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from lockgate.config.defaults import resolve_config
from tests.conftest import free_port


def test_explicit_file_wins(tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text("server: {listen: '127.0.0.1:4999'}\n")
    (tmp_path / "lockgate.yaml").write_text("server: {listen: '127.0.0.1:4111'}\n")
    resolved = resolve_config(path, {}, tmp_path, probe_ollama=False)
    assert resolved.config.server.port == 4999
    assert resolved.source == f"file:{path}"


def test_local_lockgate_yaml_is_read(tmp_path: Path) -> None:
    (tmp_path / "lockgate.yaml").write_text("server: {listen: '127.0.0.1:4111'}\n")
    resolved = resolve_config(None, {}, tmp_path, probe_ollama=False)
    assert resolved.config.server.port == 4111


def test_openai_key_from_environment(tmp_path: Path) -> None:
    resolved = resolve_config(None, {"OPENAI_API_KEY": "sk-x"}, tmp_path, probe_ollama=False)
    (provider,) = resolved.config.providers
    assert provider.type == "openai"
    assert provider.api_key is not None
    assert provider.api_key.get_secret_value() == "sk-x"
    assert [model.name for model in resolved.config.models] == ["*"]
    assert resolved.source == "env"
    assert any("OPENAI_API_KEY" in note for note in resolved.notes)
    assert all("sk-x" not in note for note in resolved.notes)


def test_nothing_found_serves_the_simulator_and_says_so(tmp_path: Path) -> None:
    resolved = resolve_config(
        None, {"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}, tmp_path, probe_ollama=True
    )
    assert [provider.type for provider in resolved.config.providers] == ["simulator"]
    assert resolved.source == "demo"
    assert any("SIMULATOR" in note for note in resolved.notes)
    assert any("OPENAI_API_KEY" in note for note in resolved.notes)


@pytest.fixture
async def fake_ollama() -> AsyncIterator[str]:
    """A loopback server answering Ollama's version probe."""

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"version": "0.9.0"})

    app = web.Application()
    app.router.add_get("/api/version", version)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield f"127.0.0.1:{port}"
    await runner.cleanup()


async def test_local_ollama_is_found(tmp_path: Path, fake_ollama: str) -> None:
    resolved = await asyncio.to_thread(resolve_config, None, {"OLLAMA_HOST": fake_ollama}, tmp_path)
    (provider,) = resolved.config.providers
    assert provider.name == "ollama"
    assert provider.base_url == f"http://{fake_ollama}/v1"
    assert [model.name for model in resolved.config.models] == ["ollama/*", "*"]


async def test_ollama_and_openai_together(tmp_path: Path, fake_ollama: str) -> None:
    env = {"OLLAMA_HOST": fake_ollama, "OPENAI_API_KEY": "sk-x"}
    resolved = await asyncio.to_thread(resolve_config, None, env, tmp_path)
    assert [p.name for p in resolved.config.providers] == ["ollama", "openai"]
    assert [(m.name, m.targets[0].provider) for m in resolved.config.models] == [
        ("ollama/*", "ollama"),
        ("*", "openai"),
    ]
