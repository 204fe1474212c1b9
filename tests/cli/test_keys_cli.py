"""`lockgate keys ...` and `lockgate db upgrade` as a user runs them: real processes, a real file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lockgate.auth.keys import hash_key
from lockgate.config.models import BudgetConfig, LimitsConfig
from lockgate.storage import Database
from tests.conftest import free_port

DECLARED_HASH = "sha256:" + "ab" * 32


def lockgate(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"OPENAI_API_KEY", "OLLAMA_HOST"}}
    return subprocess.run(
        [sys.executable, "-m", "lockgate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        input=stdin,
        timeout=60,
        check=False,
    )


def in_parallel(
    commands: list[tuple[str, ...]], cwd: Path
) -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    """Independent commands at once (each process takes a second to start), stdin empty."""
    with ThreadPoolExecutor(max_workers=min(len(commands), os.cpu_count() or 2)) as pool:
        futures = {args: pool.submit(lockgate, *args, cwd=cwd, stdin="") for args in commands}
        return {args: future.result() for args, future in futures.items()}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with a lockgate.yaml using a SQLite file, one declared team and one declared key."""
    (tmp_path / "lockgate.yaml").write_text(
        f"""
storage: {{database: "sqlite:///{tmp_path / "gateway.db"}"}}
teams: [{{name: platform}}]
keys: [{{name: declared-bot, team: platform, hash: "{DECLARED_HASH}"}}]
"""
    )
    return tmp_path


def stored_hashes(db_file: Path) -> dict[str, str]:
    with sqlite3.connect(db_file) as connection:
        return dict(connection.execute("SELECT name, key_hash FROM api_keys").fetchall())


def assert_clean_failure(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {message}"]


def test_create_prints_the_key_once_and_stores_only_its_hash(workdir: Path) -> None:
    result = lockgate("keys", "create", "ci-bot", cwd=workdir)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("lg-")
    assert len(key) == 46
    assert (result.stdout + result.stderr).count(key) == 1
    assert f"created key ci-bot (prefix {key[:9]})" in result.stderr
    assert "not shown again" in result.stderr

    db_file = workdir / "gateway.db"
    assert stored_hashes(db_file) == {"ci-bot": hash_key(key)}
    assert key.encode() not in db_file.read_bytes()
    wal = db_file.with_name("gateway.db-wal")
    assert not wal.exists() or key.encode() not in wal.read_bytes()

    hashed = lockgate("keys", "hash", key, cwd=workdir)
    assert hashed.returncode == 0, hashed.stderr
    assert hashed.stdout.strip() == hash_key(key)
    from_stdin = lockgate("keys", "hash", cwd=workdir, stdin=key + "\n")
    assert from_stdin.stdout.strip() == hash_key(key)


def test_list_shows_stored_and_declared_keys_but_no_hash(workdir: Path) -> None:
    key = lockgate("keys", "create", "ci-bot", "--rpm", "60", cwd=workdir).stdout.strip()
    result = lockgate("keys", "list", cwd=workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "PREFIX", "TEAM", "MODELS", "LIMITS", "BUDGET", "EXPIRES", "STATUS", "SOURCE"
    ]  # fmt: skip
    declared = next(line for line in lines if line.startswith("declared-bot"))
    assert declared.split() == [
        "declared-bot",
        "-",
        "platform",
        "team's",
        "-",
        "-",
        "never",
        "active",
        "config",
    ]
    stored = next(line for line in lines if line.startswith("ci-bot"))
    assert stored.split() == [
        "ci-bot",
        key[:9],
        "-",
        "team's",
        "rpm",
        "60",
        "-",
        "never",
        "active",
        "database",
    ]
    assert "sha256" not in result.stdout
    assert hash_key(key).removeprefix("sha256:") not in result.stdout
    assert key not in result.stdout

    as_json = json.loads(lockgate("keys", "list", "--json", cwd=workdir).stdout)
    assert [(k["name"], k["source"], k["prefix"]) for k in as_json] == [
        ("declared-bot", "config", None),
        ("ci-bot", "database", key[:9]),
    ]
    assert all("hash" not in field for k in as_json for field in k)


def test_revoked_keys_are_listed_only_with_all(workdir: Path) -> None:
    lockgate("keys", "create", "short-lived", cwd=workdir)
    result = lockgate("keys", "revoke", "short-lived", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "revoked key short-lived"
    assert "short-lived" not in lockgate("keys", "list", cwd=workdir).stdout
    everything = lockgate("keys", "list", "--all", cwd=workdir).stdout
    row = next(line for line in everything.splitlines() if line.startswith("short-lived"))
    assert row.split()[-2:] == ["revoked", "database"]
    again = lockgate("keys", "revoke", "short-lived", cwd=workdir)
    assert again.returncode == 0
    assert again.stdout.strip() == "key short-lived was revoked already"


async def test_create_with_a_policy(workdir: Path) -> None:
    result = lockgate(
        "keys", "create", "nightly", "--team", "platform",
        "--model", "gpt-4o", "--model", "claude-*",
        "--rpm", "10", "--tpm", "1000", "--parallel", "2",
        "--budget-usd", "5", "--budget-period", "week",
        "--expires", "2099-01-01T00:00:00Z", "--json",
        cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["key"].startswith("lg-")
    assert result.stdout.count(shown["key"]) == 1
    assert shown["prefix"] == shown["key"][:9]
    assert (shown["name"], shown["team"], shown["models"]) == (
        "nightly",
        "platform",
        ["gpt-4o", "claude-*"],
    )
    assert shown["limits"] == {"rpm": 10, "tpm": 1000, "parallel": 2}
    assert shown["budget"] == {"usd": 5.0, "period": "week", "alert_at": []}
    assert shown["expires_at"] == "2099-01-01T00:00:00Z"
    assert shown["status"] == "active"

    async with await Database.open(f"sqlite:///{workdir / 'gateway.db'}") as db:
        stored = await db.keys.get("nightly")
    assert stored is not None
    assert stored.key_hash == hash_key(shown["key"])
    assert stored.limits == LimitsConfig(rpm=10, tpm=1000, parallel=2)
    assert stored.budget == BudgetConfig(usd=5, period="week")
    assert stored.expires_at == datetime(2099, 1, 1, tzinfo=UTC)


def test_a_relative_expiry_counts_from_now(workdir: Path) -> None:
    result = lockgate("keys", "create", "month", "--expires", "30d", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    expires = datetime.fromisoformat(json.loads(result.stdout)["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)


def test_user_mistakes_are_one_clear_line(workdir: Path) -> None:
    assert lockgate("keys", "create", "taken", cwd=workdir).returncode == 0
    config = workdir / "lockgate.yaml"
    expected = {
        ("keys", "create", "taken"): "a key named 'taken' already exists",
        ("keys", "create", "declared-bot"): (
            f"key 'declared-bot' is declared in {config}: choose another name"
        ),
        ("keys", "revoke", "declared-bot"): (
            f"key 'declared-bot' is declared in {config}: remove it from the file to revoke it"
        ),
        ("keys", "revoke", "ghost"): "no key named 'ghost'",
        ("keys", "create", "x", "--expires", "soonish"): (
            "--expires: expected a duration like 30d, 12h or 2w, or a time like "
            "2027-01-01T00:00:00Z; got 'soonish'"
        ),
        ("keys", "create", "x", "--expires", "2001-01-01"): (
            "--expires 2001-01-01 is not in the future"
        ),
        ("keys", "create", "x", "--team", "nope"): (
            "no team named 'nope' in the config or the database"
        ),
        ("keys", "create", "x", "--budget-period", "day"): "--budget-period needs --budget-usd",
        ("keys", "hash"): "no key given (pass it as an argument or on stdin)",
    }
    results = in_parallel([*expected, ("keys", "create", "bad name")], cwd=workdir)
    for args, message in expected.items():
        assert_clean_failure(results[args], message)
    bad_name = results[("keys", "create", "bad name")]
    assert bad_name.returncode == 1
    [line] = bad_name.stderr.strip().splitlines()
    assert line.startswith("error: invalid key: name: String should match pattern '^[A-Za-z0-9]")
    assert set(stored_hashes(workdir / "gateway.db")) == {"taken"}


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "lockgate.yaml").write_text(
        f'storage: {{database: "postgresql://gw:hunter2-secret@127.0.0.1:{port}/lockgate"}}\n'
    )
    commands = [
        ("keys", "list"),
        ("keys", "create", "k"),
        ("keys", "revoke", "k"),
        ("db", "upgrade"),
    ]
    for args, result in in_parallel(commands, cwd=tmp_path).items():
        assert result.returncode == 1, args
        assert "Traceback" not in result.stderr
        assert "hunter2" not in result.stderr + result.stdout
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(
            f"error: cannot open database postgresql://gw:***@127.0.0.1:{port}/lockgate: "
        )


def test_a_broken_config_is_reported_like_serve_does(tmp_path: Path) -> None:
    (tmp_path / "lockgate.yaml").write_text("storage: {database: 'mysql://x'}\n")
    result = lockgate("keys", "list", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'lockgate.yaml'}:1: storage.database:" in result.stderr


def test_db_upgrade_creates_then_keeps_the_schema(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    config = str(workdir / "lockgate.yaml")
    first = lockgate("db", "upgrade", "-c", config, cwd=elsewhere)
    assert first.returncode == 0, first.stderr
    assert (
        first.stdout.strip()
        == f"sqlite:///{workdir / 'gateway.db'}: upgraded to schema 0003 (was empty)"
    )
    second = lockgate("db", "upgrade", "--config", config, cwd=elsewhere)
    assert (
        second.stdout.strip()
        == f"sqlite:///{workdir / 'gateway.db'}: schema 0003 is the latest, nothing to do"
    )
    assert not (elsewhere / "lockgate.db").exists()


def test_without_a_config_file_the_default_database_is_used(tmp_path: Path) -> None:
    result = lockgate("keys", "create", "local", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stored_hashes(tmp_path / "lockgate.db") == {"local": hash_key(result.stdout.strip())}
    assert "local" in lockgate("keys", "list", cwd=tmp_path).stdout


def test_hash_needs_no_config_and_no_database(tmp_path: Path) -> None:
    (tmp_path / "lockgate.yaml").write_text(
        "storage: {database: 'postgresql://nobody@127.0.0.1:1/x'}\n"
    )
    result = lockgate("keys", "hash", cwd=tmp_path, stdin="lg-some-key")
    assert result.returncode == 0, result.stderr
    assert result.stdout == hash_key("lg-some-key") + "\n"
    assert list(tmp_path.iterdir()) == [tmp_path / "lockgate.yaml"]
