"""`lockgate config diff` and `GET /admin/config` against a real running gateway.

The gateway is served in-process on loopback from a config file with a prompts folder and
several secrets; the command runs as a real process (as a CI job runs it) on copies of that
file, changed per test. `--against` runs in-process: it never touches the network.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lockgate.auth.keys import hash_key
from lockgate.cli.main import app
from lockgate.config.loader import load_config
from tests.access.admin_helpers import ADMIN_KEY, Admin, fresh_request, lockgate_serve
from tests.conftest import free_port, running_gateway

SECRETS = {
    "LOCKGATE_ADMIN_KEY": ADMIN_KEY,
    "SIM_KEY": "sk-cli-diff-provider-secret-1111",
    "HEADER_TOKEN": "hdr-cli-diff-secret-2222",
    "AWS_ID": "AKIACLIDIFFSECRET3333",
    "AWS_SECRET": "aws-cli-diff-secret-4444",
    "HOOK_TOKEN": "hook-cli-diff-token-5555",
}
NEW_SIM_KEY = "sk-cli-diff-rotated-secret-9999"

CONFIG = """\
server: {admin_key: "${LOCKGATE_ADMIN_KEY}"}
storage: {database: "sqlite:///STATE/gateway.db", journal_dir: "STATE/journal"}
providers:
  - name: sim
    type: simulator
    api_key: "${SIM_KEY}"
    headers: {x-tenant-token: "${HEADER_TOKEN}"}
  - name: aws
    type: bedrock
    aws: {region: us-east-1, access_key_id: "${AWS_ID}", secret_access_key: "${AWS_SECRET}"}
routing: {retries: 0}
models:
  - name: m-small
    targets: [{provider: sim, model: sim-small}]
keys:
  - {name: ci-bot, hash: "KEY_HASH", models: [m-small], limits: {rpm: 60}}
alerts: [{url: "https://hooks.example.com/services/${HOOK_TOKEN}"}]
prompts: {dir: ./prompts}
"""
VERSION = """\
model: m-small
messages: [{role: user, content: "Sentiment of: {{ text }} VARIANT"}]
input: {type: object, properties: {text: {type: string}}, required: [text]}
"""
PROMPTS = {
    "sentiment/1.0.0.yaml": VERSION,
    "sentiment/1.1.0.yaml": VERSION.replace("VARIANT", "(calibrated)"),
    "sentiment/labels.yaml": "production: 1.0.0\ncanary: {version: 1.1.0, weight: 10}\n",
}


def write_config(folder: Path, state: Path, text: str = CONFIG) -> Path:
    """`folder/lockgate.yaml` and `folder/prompts/`; state (database, journal) under `state`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in PROMPTS.items():
        path = folder / "prompts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    path = folder / "lockgate.yaml"
    text = text.replace("KEY_HASH", hash_key("lg-cli-diff-key"))
    path.write_text(text.replace("STATE", str(state)))
    return path


@dataclass(frozen=True)
class Gateway:
    url: str
    file: Path
    state: Path

    def copy(self, folder: Path) -> Path:
        """The gateway's config file and prompts, copied to `folder` (to be changed there)."""
        shutil.copytree(self.file.parent, folder)
        return folder / self.file.name


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    state = tmp_path_factory.mktemp("state")
    file = write_config(tmp_path_factory.mktemp("served") / "config", state)
    async with running_gateway(load_config(file, env=SECRETS), source=file) as url:
        yield Gateway(url, file, state)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


async def lockgate(*args: str, **env: str) -> Run:
    """`lockgate *args` as a real process with the secrets (and `env`) in its environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lockgate",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**clean, **SECRETS, **env},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())


def assert_no_secret(text: str) -> None:
    for name, value in {**SECRETS, "NEW_SIM_KEY": NEW_SIM_KEY}.items():
        assert value not in text, name


# -- GET /admin/config ----------------------------------------------------------------------------


async def test_admin_config_shows_the_running_config_with_every_secret_redacted(
    gateway: Gateway,
) -> None:
    admin = Admin(gateway.url)
    status, body = await admin.request("GET", "/admin/config")
    assert status == 200, body
    assert_no_secret(json.dumps(body))
    assert body["source"] == str(gateway.file)
    assert body["overrides"] == {}
    config = body["config"]
    sim, aws = config["providers"]
    assert sim["api_key"].startswith("***hmac-sha256:")
    assert sim["headers"]["x-tenant-token"].startswith("***hmac-sha256:")
    assert aws["aws"]["access_key_id"].startswith("***hmac-sha256:")
    assert aws["aws"]["secret_access_key"].startswith("***hmac-sha256:")
    assert config["alerts"][0]["url"].startswith("***hmac-sha256:")
    assert config["server"]["admin_key"].startswith("***hmac-sha256:")
    assert config["keys"][0]["hash"] == hash_key("lg-cli-diff-key")  # a hash: shown
    assert config["keys"][0]["limits"]["rpm"] == 60
    assert config["routing"]["retries"] == 0
    assert config["routing"]["timeout_s"] == 60.0  # defaults filled in
    prompts = gateway.file.parent / "prompts" / "sentiment"
    assert body["prompts"] == {
        "sentiment": {
            "versions": {
                version: hashlib.sha256((prompts / f"{version}.yaml").read_bytes()).hexdigest()
                for version in ("1.0.0", "1.1.0")
            },
            "labels": {"production": "1.0.0", "canary": {"version": "1.1.0", "weight": 10}},
        }
    }


async def test_admin_config_needs_the_admin_key(gateway: Gateway) -> None:
    admin = Admin(gateway.url)
    status, body = await admin.request("GET", "/admin/config", use_key=False)
    assert status == 401
    assert_no_secret(json.dumps(body))
    status, _ = await admin.request("GET", "/admin/config", key="not-the-admin-key-at-all")
    assert status == 401


async def test_admin_config_is_in_the_openapi_description(gateway: Gateway) -> None:
    _, spec = await Admin(gateway.url).request("GET", "/openapi.json")
    answer = spec["paths"]["/admin/config"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ConfigSnapshot"
    }
    assert set(spec["components"]["schemas"]["ConfigSnapshot"]["properties"]) == {
        "config",
        "prompts",
        "source",
        "overrides",
    }


# -- lockgate config diff --url -------------------------------------------------------------------


async def test_the_served_file_has_no_changes_exit_0(gateway: Gateway) -> None:
    run = await lockgate("config", "diff", str(gateway.file), "--url", gateway.url)
    assert run.code == 0, run.output
    assert run.stdout == f"{gateway.file} vs the gateway at {gateway.url}: no changes\n"


async def test_a_model_a_limit_and_a_provider_key_changed_exit_2(
    gateway: Gateway, tmp_path: Path
) -> None:
    file = gateway.copy(tmp_path / "repo")
    text = file.read_text().replace("limits: {rpm: 60}", "limits: {rpm: 120}")
    text = text.replace(
        "models:\n",
        "models:\n  - name: m-large\n    targets: [{provider: sim, model: sim-large}]\n",
    )
    file.write_text(text)
    args = ("config", "diff", str(file), "--url", gateway.url)
    run = await lockgate(*args, SIM_KEY=NEW_SIM_KEY)
    assert run.code == 2, run.output
    assert run.stdout.startswith(f"{file} vs the gateway at {gateway.url}: 3 changes\n")
    assert "providers\n  ~ sim\n      ~ api_key: changed (secret, not shown)\n" in run.stdout
    assert "models\n  + m-large: " in run.stdout
    assert "keys\n  ~ ci-bot\n      ~ limits.rpm: 60 → 120\n" in run.stdout
    assert_no_secret(run.output)

    markdown = await lockgate(*args, "--format", "markdown", SIM_KEY=NEW_SIM_KEY)
    assert markdown.code == 2, markdown.output
    assert markdown.stdout.startswith("### Config diff: 3 changes\n")
    assert "- added `m-large`: " in markdown.stdout
    assert "  - `limits.rpm`: `60` → `120`\n" in markdown.stdout
    assert_no_secret(markdown.output)

    document = await lockgate(*args, "--format", "json", SIM_KEY=NEW_SIM_KEY)
    assert document.code == 2, document.output
    assert_no_secret(document.output)
    found = json.loads(document.stdout)
    assert found["summary"] == {"changes": 3, "restart": 0, "violations": 0}
    assert [(c["section"], c["item"], c["field"]) for c in found["changes"]] == [
        ("providers", "sim", "api_key"),
        ("models", "m-large", None),
        ("keys", "ci-bot", "limits.rpm"),
    ]


async def test_an_edited_prompt_version_is_a_violation(gateway: Gateway, tmp_path: Path) -> None:
    file = gateway.copy(tmp_path / "repo")
    version = file.parent / "prompts" / "sentiment" / "1.0.0.yaml"
    version.write_text(VERSION.replace("VARIANT", "(edited in place)"))
    (file.parent / "prompts" / "sentiment" / "labels.yaml").write_text("production: 1.1.0\n")
    run = await lockgate("config", "diff", str(file), "--url", gateway.url)
    assert run.code == 2, run.output
    assert "3 changes, 1 violation" in run.stdout
    assert "~ 1.0.0: sha256 " in run.stdout
    assert "[a published prompt version must not change" in run.stdout
    assert "- labels.canary: 1.1.0 (10%)" in run.stdout
    assert "~ labels.production: 1.0.0 → 1.1.0" in run.stdout


async def test_settings_that_need_a_restart_are_marked(gateway: Gateway, tmp_path: Path) -> None:
    file = gateway.copy(tmp_path / "repo")
    file.write_text(file.read_text().replace("server: {", "server: {listen: '0.0.0.0:4000', "))
    run = await lockgate("config", "diff", str(file), "--url", gateway.url)
    assert run.code == 2, run.output
    assert "1 change, 1 needs a restart" in run.stdout
    assert '~ listen: "127.0.0.1:4000" → "0.0.0.0:4000"  [restart needed]' in run.stdout
    assert "restart the gateway" in run.stdout


async def test_an_invalid_file_prints_every_error_exit_1(gateway: Gateway, tmp_path: Path) -> None:
    file = gateway.copy(tmp_path / "repo")
    text = file.read_text().replace("routing: {retries: 0}", "routing: {retries: 0, timout_s: 5}")
    file.write_text(text.replace("model: sim-small", "model: sim-small, weight: -1"))
    run = await lockgate("config", "diff", str(file), "--url", gateway.url)
    assert run.code == 1, run.output
    assert run.stdout == ""
    assert f"{file}:11: routing.timout_s: unknown key 'timout_s' (did you mean" in run.stderr
    assert f"{file}:14: models[0].targets[0].weight: Input should be greater than 0" in run.stderr
    assert f"2 errors in {file}" in run.stderr


async def test_an_invalid_prompt_file_exit_1(gateway: Gateway, tmp_path: Path) -> None:
    file = gateway.copy(tmp_path / "repo")
    (file.parent / "prompts" / "sentiment" / "labels.yaml").write_text("production: 9.9.9\n")
    run = await lockgate("config", "diff", str(file), "--url", gateway.url)
    assert run.code == 1, run.output
    assert "labels.yaml:1: production: version 9.9.9 does not exist" in run.stderr


async def test_an_unreachable_gateway_exit_3(gateway: Gateway) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = await lockgate("config", "diff", str(gateway.file), "--url", url)
    assert run.code == 3, run.output
    assert f"error: cannot reach the gateway at {url}" in run.stderr
    assert run.stdout == ""


async def test_a_refused_admin_key_exit_3(gateway: Gateway) -> None:
    run = await lockgate(
        "config", "diff", str(gateway.file), "--url", gateway.url, "--admin-key", "wrong-key"
    )
    assert run.code == 3, run.output
    assert f"error: the gateway at {gateway.url} refused the admin key (401)" in run.stderr


async def test_the_url_and_key_come_from_the_environment(gateway: Gateway) -> None:
    run = await lockgate("config", "diff", str(gateway.file), LOCKGATE_URL=gateway.url)
    assert run.code == 0, run.output


async def test_command_line_mistakes_exit_1_not_2(gateway: Gateway) -> None:
    run = await lockgate("config", "diff", str(gateway.file), "--format", "yaml")
    assert run.code == 1, run.output
    run = await lockgate(
        "config", "diff", str(gateway.file), "--url", gateway.url, LOCKGATE_ADMIN_KEY=""
    )
    assert run.code == 1, run.output
    assert "admin key is needed" in run.stderr


# -- lockgate config diff --against ---------------------------------------------------------------


def diff_offline(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["config", "diff", *args], env=SECRETS)
    return result.exit_code, result.output


def test_against_another_file_offline(tmp_path: Path) -> None:
    state = tmp_path / "state"
    old = write_config(tmp_path / "old", state)
    new = write_config(tmp_path / "new", state)
    code, output = diff_offline(str(new), "--against", str(old), "--url", "http://nowhere.invalid")
    assert code == 0, output
    assert output == f"{new} vs {old}: no changes\n"
    new.write_text(new.read_text().replace('"${SIM_KEY}"', '"${HOOK_TOKEN}"'))
    (new.parent / "prompts" / "sentiment" / "1.2.0.yaml").write_text(VERSION)
    code, output = diff_offline(str(new), "--against", str(old))
    assert code == 2, output
    assert "api_key: changed (secret, not shown)" in output
    assert "+ 1.2.0" in output
    assert_no_secret(output)


# -- a gateway run by `lockgate serve` ------------------------------------------------------------


def test_a_served_gateway_after_a_reload_has_no_changes_left(tmp_path: Path) -> None:
    """`serve --listen` overrides the file's listen (the diff must not report it); once the
    gateway reloads the changed file, the diff is empty: it predicted what the reload did."""
    state = tmp_path / "state"
    state.mkdir()
    text = CONFIG.replace('"${LOCKGATE_ADMIN_KEY}"', f'"{ADMIN_KEY}"')
    for name in ("SIM_KEY", "HEADER_TOKEN", "AWS_ID", "AWS_SECRET", "HOOK_TOKEN"):
        text = text.replace("${" + name + "}", SECRETS[name])
    file = write_config(tmp_path / "repo", state, text)
    command = [sys.executable, "-m", "lockgate", "config", "diff", str(file), "--admin-key"]

    def diff(url: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
        args = [*command, ADMIN_KEY, "--url", url]
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)

    with lockgate_serve(file, log=tmp_path / "serve.log") as (url, _):
        assert diff(url).returncode == 0, diff(url).stderr
        file.write_text(file.read_text().replace("limits: {rpm: 60}", "limits: {rpm: 61}"))
        before = diff(url)
        assert before.returncode == 2, before.stderr
        assert "~ limits.rpm: 60 → 61" in before.stdout
        assert fresh_request(url, "POST", "/admin/config/reload", ADMIN_KEY)[0] == 200
        after = diff(url)
        assert after.returncode == 0, after.stdout + after.stderr
