"""Config reload: `POST /admin/config/reload` on an in-process gateway serving a file, and SIGHUP
to a real `lockgate serve` process with one and with two workers."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import openai
import pytest

from lockgate.config.loader import load_config
from tests.access.admin_helpers import (
    ADMIN_KEY,
    USER,
    Admin,
    base_yaml,
    chat,
    declared_key_yaml,
    fresh_request,
    lockgate_serve,
    openai_client,
    secret,
    wait_for,
    worker_pids,
)
from tests.conftest import free_port, running_gateway

ADDED_MODEL = """  - name: added
    targets: [{provider: sim, model: sim-added}]
"""
SLOW_MODELS = """  - name: slow-stream
    targets: [{provider: sim, model: "sim-slow?tokens_per_s=25&tokens=25"}]
  - name: slow-answer
    targets: [{provider: sim, model: "sim-late?latency_ms=800"}]
"""


class ConfigFile:
    """A gateway's config file, rewritten by the tests."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.database = f"sqlite:///{path.parent / 'reload.db'}"

    def write(
        self, extra_models: str = "", keys: tuple[str, ...] = ("alpha",), server: str = ""
    ) -> None:
        text = base_yaml(database=self.database, extra_models=extra_models, server=server)
        if keys:
            text += "keys:\n" + "".join(declared_key_yaml(name) for name in keys)
        self.path.write_text(text)


@asynccontextmanager
async def served(file: ConfigFile) -> AsyncIterator[str]:
    async with running_gateway(load_config(file.path), source=file.path) as url:
        yield url


async def reload(url: str) -> tuple[int, dict[str, object]]:
    status, body = await Admin(url).request("POST", "/admin/config/reload")
    assert isinstance(body, dict), body
    return status, body


async def model_ids(url: str, key: str) -> list[str]:
    async with openai_client(url, key) as client:
        return [model.id async for model in client.models.list()]


async def test_a_reload_adds_a_model(tmp_path: Path) -> None:
    file = ConfigFile(tmp_path / "lockgate.yaml")
    file.write()
    async with served(file) as url:
        async with openai_client(url, secret("alpha")) as client:
            with pytest.raises(openai.NotFoundError) as caught:
                await client.chat.completions.create(model="added", messages=USER)
        assert caught.value.code == "model_not_found"
        file.write(extra_models=ADDED_MODEL)
        assert await reload(url) == (200, {"status": "reloaded", "errors": []})
        assert await chat(url, secret("alpha"), "added") == "sim-added"
        assert await chat(url, secret("alpha"), "m-small") == "sim-small"
        assert await model_ids(url, secret("alpha")) == ["m-small", "m-large", "other", "added"]
        # Reloading the same file again is harmless.
        assert (await reload(url))[0] == 200
        assert await chat(url, secret("alpha"), "added") == "sim-added"


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            "routing: {retries: 0, timeout_s: 10, colour: blue}\n",
            ["routing.colour: unknown key 'colour'"],
        ),
        ("models: [unclosed\n", ["invalid YAML"]),
        (
            "routing: {timeout_s: -1, retries: many}\n",
            [
                "routing.timeout_s: Input should be greater than 0",
                "routing.retries: Input should be a valid integer",
            ],
        ),
        (
            "providers: [{name: sim, type: simulator}]\n"
            "models: [{name: m-small, targets: [{provider: nobody, model: x}]}]\n",
            ["models[0].targets[0].provider", "nobody"],
        ),
        (None, ["cannot read"]),
    ],
    ids=["unknown key", "YAML error", "two mistakes", "unknown provider", "file missing"],
)
async def test_a_failing_reload_keeps_the_running_config(
    tmp_path: Path, broken: str | None, expected: list[str]
) -> None:
    file = ConfigFile(tmp_path / "lockgate.yaml")
    file.write()
    async with served(file) as url:
        if broken is None:
            file.path.unlink()
        else:
            file.path.write_text(
                f'server: {{admin_key: "{ADMIN_KEY}"}}\n'
                f'storage: {{database: "{file.database}"}}\n' + broken
            )
        status, body = await reload(url)
        assert status == 422, body
        assert body["status"] == "failed"
        errors = body["errors"]
        assert isinstance(errors, list)
        assert errors
        text = "\n".join(str(error) for error in errors)
        for fragment in expected:
            assert fragment in text, text
        if broken is not None:
            assert str(file.path) in text
        # The old config keeps serving: models, keys, the admin key.
        assert await chat(url, secret("alpha"), "m-small") == "sim-small"
        assert await model_ids(url, secret("alpha")) == ["m-small", "m-large", "other"]
        assert await chat(url, ADMIN_KEY, "other") == "sim-other"
        # Fixing the file makes the next reload take.
        file.write(extra_models=ADDED_MODEL)
        assert (await reload(url))[0] == 200
        assert await chat(url, secret("alpha"), "added") == "sim-added"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("server", "server.listen changed: restart the gateway to apply it"),
        ("workers", "server.workers changed: restart the gateway to apply it"),
        ("storage", "storage changed: restart the gateway to apply it"),
    ],
)
async def test_settings_that_need_a_restart_are_refused(
    tmp_path: Path, change: str, message: str
) -> None:
    file = ConfigFile(tmp_path / "lockgate.yaml")
    file.write()
    async with served(file) as url:
        file.write(extra_models=ADDED_MODEL)
        text = file.path.read_text()
        if change == "server":
            text = text.replace("server:\n", "server:\n  listen: 127.0.0.1:4999\n", 1)
        elif change == "workers":
            text = text.replace("server:\n", "server:\n  workers: 3\n", 1)
        else:
            text = text.replace("reload.db", "elsewhere.db")
        file.path.write_text(text)
        assert await reload(url) == (422, {"status": "failed", "errors": [message]})
        async with openai_client(url, secret("alpha")) as client:
            with pytest.raises(openai.NotFoundError):
                await client.chat.completions.create(model="added", messages=USER)


async def test_requests_in_flight_finish_on_the_config_they_started_with(tmp_path: Path) -> None:
    file = ConfigFile(tmp_path / "lockgate.yaml")
    file.write(extra_models=SLOW_MODELS)
    async with served(file) as url, openai_client(url, secret("alpha")) as client:
        slow_answer = asyncio.get_running_loop().create_task(
            client.chat.completions.create(model="slow-answer", messages=USER)
        )
        stream = await client.chat.completions.create(
            model="slow-stream", messages=USER, stream=True
        )
        chunks = [await anext(aiter(stream))]
        started = time.monotonic()

        assert not slow_answer.done()
        file.write()  # both slow models are gone
        assert (await reload(url))[0] == 200
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="slow-stream", messages=USER)
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="slow-answer", messages=USER)

        chunks += [chunk async for chunk in stream]
        assert time.monotonic() - started > 0.3  # the stream was still running at the reload
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        assert len(text.split()) == 25
        finish = [
            c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
        ]
        assert finish == ["stop"]
        reply = await slow_answer
        assert reply.choices[0].message.content
        assert reply.model == "sim-late"


async def test_keys_declared_in_the_reloaded_file_take_effect(tmp_path: Path) -> None:
    file = ConfigFile(tmp_path / "lockgate.yaml")
    file.write(keys=("alpha",))
    async with served(file) as url:
        assert await chat(url, secret("alpha")) == "sim-small"
        async with openai_client(url, secret("beta")) as client:
            with pytest.raises(openai.AuthenticationError):
                await client.chat.completions.create(model="m-small", messages=USER)

        file.write(keys=("beta",))
        assert (await reload(url))[0] == 200
        assert await chat(url, secret("beta")) == "sim-small"
        async with openai_client(url, secret("alpha")) as client:
            with pytest.raises(openai.AuthenticationError) as caught:
                await client.chat.completions.create(model="m-small", messages=USER)
        assert caught.value.code == "invalid_api_key"
        listed = [key["name"] for key in await Admin(url).ok("GET", "/admin/keys")]
        assert listed == ["beta"]
        # A key the admin API stored survives a reload of the file.
        made = await Admin(url).ok("POST", "/admin/keys", {"name": "stored"}, status=201)
        file.write(keys=("beta", "gamma"))
        assert (await reload(url))[0] == 200
        assert await chat(url, made["key"]) == "sim-small"
        assert await chat(url, secret("gamma")) == "sim-small"


async def test_a_reload_needs_the_admin_key(tmp_path: Path) -> None:
    file = ConfigFile(tmp_path / "lockgate.yaml")
    file.write()
    async with served(file) as url:
        file.write(extra_models=ADDED_MODEL)
        for key in (secret("alpha"), "wrong-admin-key-0000"):
            status, _ = await Admin(url, key).request("POST", "/admin/config/reload")
            assert status == 401
        with pytest.raises(openai.NotFoundError):
            await chat(url, secret("alpha"), "added")


# -- SIGHUP to `lockgate serve` ---------------------------------------------------------------


async def lists_model(url: str, model: str) -> bool | None:
    """True when a request on a fresh connection lists `model` in /v1/models; None when it does
    not, or when no worker listens yet."""
    try:
        status, body = await asyncio.to_thread(
            fresh_request, url, "GET", "/v1/models", secret("alpha")
        )
    except OSError:  # urllib's URLError included: refused while the workers start
        return None
    assert status == 200, body
    return True if model in [entry["id"] for entry in body["data"]] else None


async def logged(log: Path, text: str) -> bool | None:
    return True if text in await asyncio.to_thread(log.read_text) else None


async def every_answer_lists(url: str, model: str, in_a_row: int = 30) -> None:
    """Wait until `in_a_row` requests on fresh connections all list `model`: each goes to
    whichever worker accepts it, so by then every worker has the new config."""
    deadline = time.monotonic() + 15
    streak = 0
    while streak < in_a_row:
        assert time.monotonic() < deadline, f"only {streak} answers in a row list {model!r}"
        if await lists_model(url, model):
            streak += 1
        else:
            streak = 0
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "listen_in_file", [True, False], ids=["listen in the file too", "listen on the command line"]
)
async def test_sighup_reloads_a_single_process(tmp_path: Path, listen_in_file: bool) -> None:
    """`lockgate serve -c FILE --listen ADDR`, then SIGHUP after editing FILE. Whether FILE also
    names ADDR in `server.listen` or not, the address the process listens on did not change."""
    file = ConfigFile(tmp_path / "lockgate.yaml")
    port = free_port()
    server = f"  listen: 127.0.0.1:{port}" if listen_in_file else ""
    file.write(server=server)
    log = tmp_path / "serve.log"
    with lockgate_serve(file.path, log=log, port=port) as (url, process):
        assert await lists_model(url, "added") is None
        # A broken file first: the process keeps serving its config and logs why.
        file.path.write_text(file.path.read_text() + "  - {name: broken\n")
        process.send_signal(signal.SIGHUP)
        await wait_for(lambda: logged(log, "config reload failed"), timeout_s=10)
        assert await chat(url, secret("alpha"), "m-small") == "sim-small"

        file.write(extra_models=ADDED_MODEL, server=server)
        process.send_signal(signal.SIGHUP)
        try:
            await wait_for(lambda: lists_model(url, "added"), timeout_s=5)
        except AssertionError:
            raise AssertionError(f"the reload did not take:\n{log.read_text()}") from None
        assert await chat(url, secret("alpha"), "added") == "sim-added"
        assert process.poll() is None  # reloaded, not restarted
        assert log.read_text().count("config reload failed") == 1


async def test_sighup_reaches_every_worker(tmp_path: Path) -> None:
    file = ConfigFile(tmp_path / "lockgate.yaml")
    file.write()
    log = tmp_path / "serve.log"
    with lockgate_serve(file.path, "--workers", "2", log=log, workers=2) as (url, process):
        workers = worker_pids(process.pid)
        assert len(workers) == 2, log.read_text()

        file.write(extra_models=ADDED_MODEL)
        process.send_signal(signal.SIGHUP)
        await every_answer_lists(url, "added")
        # Reloaded in place, not restarted.
        assert worker_pids(process.pid) == workers, log.read_text()
        assert await chat(url, secret("alpha"), "added") == "sim-added"

        # The admin API's reload, answered by one worker, reaches the other one too.
        file.write(extra_models=ADDED_MODEL.replace("added", "second"))
        status, body = await asyncio.to_thread(
            fresh_request, url, "POST", "/admin/config/reload", ADMIN_KEY
        )
        assert (status, body) == (200, {"status": "reloaded", "errors": []})
        await every_answer_lists(url, "second")
        assert worker_pids(process.pid) == workers, log.read_text()


async def test_a_sighup_while_workers_start_does_not_kill_them(tmp_path: Path) -> None:
    """A reload asked for while the workers are still starting (their SIGHUP handler not yet
    installed) must not terminate them: SIGHUP's default action is to end the process."""
    file = ConfigFile(tmp_path / "lockgate.yaml")
    file.write(extra_models=ADDED_MODEL)
    log = tmp_path / "serve.log"
    with lockgate_serve(file.path, "--workers", "2", log=log, wait=False) as (url, process):
        workers, _ = await wait_for(
            lambda: _two(worker_pids(process.pid)), timeout_s=30, interval_s=0.01
        )
        process.send_signal(signal.SIGHUP)  # the workers are still importing and starting
        await wait_for(lambda: lists_model(url, "added"), timeout_s=30, interval_s=0.2)
        await asyncio.sleep(1)  # time for the supervisor to notice a dead worker
        assert "died" not in log.read_text(), log.read_text()
        assert worker_pids(process.pid) == workers, log.read_text()


async def _two(pids: set[int]) -> set[int] | None:
    return pids if len(pids) == 2 else None
