"""The comparison behind `lockgate config diff`: snapshots, redaction, changes, rendering.

Configs are written as YAML and validated as the loader does (`config_from_yaml`); prompt folders
are real files loaded by the prompt registry. Every rendering is checked for the secrets' absence.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockgate.app import _restart_only_changes
from lockgate.auth.keys import hash_key
from lockgate.config.diff import (
    OFFLINE_KEY,
    RESTART_ONLY,
    Change,
    ConfigSnapshot,
    compare,
    fingerprint,
    snapshot,
    with_overrides,
)
from lockgate.config.diff_render import render_json, render_text
from lockgate.config.models import GatewayConfig
from lockgate.prompts.registry import PromptRegistry
from tests.conftest import config_from_yaml

SECRETS = {
    "ADMIN": "admin-key-diff-tests-0123456789",
    "SIM_KEY": "sk-diff-provider-secret-111",
    "HEADER": "hdr-diff-secret-222",
    "AWS_ID": "AKIADIFFSECRET333",
    "AWS_SECRET": "aws-diff-secret-444",
    "HOOK": "hook-diff-token-555",
    "DB_PASSWORD": "db-diff-password-666",
    "REDIS_PASSWORD": "redis-diff-password-777",
    "QUERY": "query-diff-token-888",
}
KEY_HASH = hash_key("lg-diff-tests-declared-key")

BASE = """\
server: {admin_key: "${ADMIN}"}
storage:
  database: "postgresql://lockgate:${DB_PASSWORD}@db.internal/lockgate"
  redis: "redis://:${REDIS_PASSWORD}@redis.internal:6379/0"
providers:
  - name: sim
    type: openai
    base_url: "https://llm.internal/v1?api-key=${QUERY}&region=eu"
    api_key: "${SIM_KEY}"
    headers: {x-tenant-token: "${HEADER}"}
  - name: aws
    type: bedrock
    aws: {region: us-east-1, access_key_id: "${AWS_ID}", secret_access_key: "${AWS_SECRET}"}
models:
  - name: chat
    targets: [{provider: sim, model: small}]
  - name: smart
    strategy: weighted
    targets: [{provider: sim, model: large, weight: 1}, {provider: aws, model: claude}]
    fallbacks: [chat]
  - name: "sim/*"
    targets: [{provider: sim, model: "*"}]
  - name: "*"
    targets: [{provider: sim, model: "*"}]
teams:
  - {name: platform, limits: {rpm: 600}, budget: {usd: 500}}
keys:
  - {name: ci-bot, team: platform, hash: "KEY_HASH", models: [chat], limits: {rpm: 60}}
alerts: [{url: "https://hooks.example.com/services/${HOOK}"}]
"""


def base(replace: dict[str, str] | None = None, extra: str = "", **env: str) -> GatewayConfig:
    text = BASE.replace("KEY_HASH", KEY_HASH)
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return config_from_yaml(text + extra, **{**SECRETS, **env})


def snap(config: GatewayConfig, registry: PromptRegistry | None = None) -> ConfigSnapshot:
    return snapshot(config, registry, key=OFFLINE_KEY)


def diff(old: GatewayConfig, new: GatewayConfig) -> list[Change]:
    return compare(snap(old), snap(new))


def paths(changes: list[Change]) -> list[tuple[str, str | None, str | None, str]]:
    return [(c.section, c.item, c.field, c.kind) for c in changes]


def all_renderings(changes: list[Change]) -> str:
    return "\n".join(
        [
            render_text(changes, "old.yaml", "new.yaml"),
            render_text(changes, "old.yaml", "new.yaml", markdown=True),
            render_json(changes, "old.yaml", "new.yaml"),
        ]
    )


def assert_no_secret(text: str) -> None:
    for name, value in SECRETS.items():
        assert value not in text, name
    assert "hmac-sha256:" not in text  # not even a fingerprint is printed


# -- snapshots ------------------------------------------------------------------------------------


def test_a_snapshot_replaces_every_secret_with_a_keyed_fingerprint() -> None:
    config = base()
    taken = snap(config)
    text = taken.model_dump_json()
    for name, value in SECRETS.items():
        assert value not in text, name
    sim, aws = taken.config["providers"]  # type: ignore[misc]
    assert isinstance(sim, dict)
    assert isinstance(aws, dict)
    assert sim["api_key"] == fingerprint(SECRETS["SIM_KEY"], OFFLINE_KEY)
    assert sim["headers"] == {"x-tenant-token": fingerprint(SECRETS["HEADER"], OFFLINE_KEY)}
    query = fingerprint(SECRETS["QUERY"], OFFLINE_KEY)
    assert sim["base_url"] == f"https://llm.internal/v1?api-key={query}&region=eu"
    assert aws["aws"] == {
        "region": "us-east-1",
        "access_key_id": fingerprint(SECRETS["AWS_ID"], OFFLINE_KEY),
        "secret_access_key": fingerprint(SECRETS["AWS_SECRET"], OFFLINE_KEY),
        "session_token": None,
    }
    storage = taken.config["storage"]
    assert isinstance(storage, dict)
    password = fingerprint(SECRETS["DB_PASSWORD"], OFFLINE_KEY)
    assert storage["database"] == f"postgresql://lockgate:{password}@db.internal/lockgate"
    # Not secrets: names, hashes of keys, defaults.
    assert '"ci-bot"' in text
    assert KEY_HASH in text
    assert taken.config["routing"] == config.routing.model_dump(mode="json")


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("sqlite:///./state@v2/lockgate.db", "sqlite:///./state@v2/lockgate.db"),
        ("redis://tok-s3cret@redis.internal:6379/0", "redis://FP@redis.internal:6379/0"),
        ("redis://user:pw-s3cret@redis.internal/0", "redis://user:FP@redis.internal/0"),
        (
            "unix:///run/redis.sock?db=1&password=pw-s3cret",
            "unix:///run/redis.sock?db=1&password=FP",
        ),
    ],
)
def test_credentials_in_urls_are_masked_and_other_urls_kept_as_written(
    written: str, shown: str
) -> None:
    field = "database" if written.startswith("sqlite") else "redis"
    taken = snap(config_from_yaml(f"storage: {{{field}: '{written}'}}\n"))
    storage = taken.config["storage"]
    assert isinstance(storage, dict)
    secret = next((p for p in ("tok-s3cret", "pw-s3cret") if p in written), "")
    assert storage[field] == shown.replace("FP", fingerprint(secret, OFFLINE_KEY))


def test_the_gitlab_bot_token_is_a_secret_too() -> None:
    """Redaction goes by type: every `SecretStr`, in any section, becomes a fingerprint."""
    token = "glpat-diff-secret-token-000"
    text = "gitlab: {url: 'https://gitlab.example.com', token: '${TOKEN}'}\n"
    old, new = config_from_yaml(text, TOKEN=token), config_from_yaml(text, TOKEN=token[::-1])
    assert token not in snap(old).model_dump_json()
    changes = diff(old, new)
    assert paths(changes) == [("gitlab", None, "token", "changed")]
    assert changes[0].secret
    assert token not in all_renderings(changes)


def test_fingerprints_depend_on_the_key_and_show_a_change() -> None:
    assert fingerprint("s", b"k1") == fingerprint("s", b"k1")
    assert fingerprint("s", b"k1") != fingerprint("s", b"k2")
    assert fingerprint("s", b"k1") != fingerprint("t", b"k1")
    assert fingerprint("s", b"k1").startswith("***hmac-sha256:")


def test_the_same_config_has_no_changes() -> None:
    changes = diff(base(), base())
    assert changes == []
    assert render_text(changes, "a", "b") == "b vs a: no changes\n"
    assert json.loads(render_json(changes, "a", "b"))["summary"]["changes"] == 0


def test_the_order_of_named_items_in_the_file_does_not_matter() -> None:
    swapped = base(
        {
            "  - {name: platform, limits: {rpm: 600}, budget: {usd: 500}}\n": (
                "  - {name: other}\n  - {name: platform, limits: {rpm: 600}, budget: {usd: 500}}\n"
            )
        }
    )
    assert paths(diff(base(), swapped)) == [("teams", "other", None, "added")]


# -- each section ---------------------------------------------------------------------------------


def test_models_added_removed_and_changed() -> None:
    new = base(
        {
            "  - name: chat\n    targets: [{provider: sim, model: small}]\n": (
                "  - name: chat2\n    targets: [{provider: sim, model: small}]\n"
                "    price: {input: 1, output: 2}\n"
            ),
            "    strategy: weighted\n": "    strategy: fallback\n    timeout_s: 20\n"
            "    cache_ttl_s: 0\n    price: {input: 3, output: 4}\n",
            "model: large, weight: 1}": "model: large, weight: 3}",
            "    fallbacks: [chat]\n": "    fallbacks: [chat2]\n",
        }
    )
    changes = diff(base(), new)
    assert paths(changes) == [
        ("models", "chat", None, "removed"),
        ("models", "chat2", None, "added"),
        ("models", "smart", "targets[0].weight", "changed"),
        ("models", "smart", "strategy", "changed"),
        ("models", "smart", "fallbacks[0]", "changed"),
        ("models", "smart", "price", "changed"),
        ("models", "smart", "timeout_s", "changed"),
        ("models", "smart", "cache_ttl_s", "changed"),
    ]
    text = render_text(changes, "old.yaml", "new.yaml")
    assert "new.yaml vs old.yaml: 8 changes\n" in text
    assert "models\n  - chat\n  + chat2: {" in text
    assert '"price": {"input": 1.0, "output": 2.0}' in text
    assert "  ~ smart\n      ~ targets[0].weight: 1.0 → 3.0\n" in text
    assert '      ~ strategy: "weighted" → "fallback"\n' in text
    assert "      ~ cache_ttl_s: null → 0.0\n" in text


def test_model_rules_and_the_order_of_globs() -> None:
    new = base(
        {
            '  - name: "sim/*"\n    targets: [{provider: sim, model: "*"}]\n'
            '  - name: "*"\n    targets: [{provider: sim, model: "*"}]\n': (
                '  - name: "*"\n    targets: [{provider: sim, model: "*"}]\n'
                '  - name: "sim/*"\n    targets: [{provider: sim, model: "*"}]\n'
                "  - name: router\n    rules: [{if: {stream: true}, model: chat}, {model: smart}]\n"
            )
        }
    )
    changes = diff(base(), new)
    assert paths(changes) == [
        ("models", "router", None, "added"),
        ("models", None, "order of globs", "changed"),
    ]
    text = render_text(changes, "old", "new")
    assert '~ order of globs: ["sim/*", "*"] → ["*", "sim/*"]' in text
    assert '"rules": [{"if": {"stream": true}, "model": "chat"}, {"model": "smart"}]' in text


def test_providers_type_url_and_a_changed_key_without_its_value() -> None:
    url = '    base_url: "https://llm.internal/v1?api-key=${QUERY}&region=eu"\n'
    new = base(
        {
            "    type: openai\n" + url: (
                '    type: mistral\n    base_url: "https://llm2.internal/v1"\n'
            ),
        },
        SIM_KEY="sk-diff-rotated-999",
    )
    changes = diff(base(), new)
    assert paths(changes) == [
        ("providers", "sim", "type", "changed"),
        ("providers", "sim", "base_url", "changed"),
        ("providers", "sim", "api_key", "changed"),
    ]
    api_key = changes[2]
    assert api_key.secret
    assert (api_key.old, api_key.new) == ("***", "***")
    url = changes[1]
    assert url.secret  # the old URL held a token: shown masked
    assert url.old == "https://llm.internal/v1?api-key=***&region=eu"
    rendered = all_renderings(changes)
    assert_no_secret(rendered)
    assert "sk-diff-rotated-999" not in rendered
    assert "      ~ api_key: changed (secret, not shown)\n" in rendered
    assert "- `api_key`: changed (secret, not shown)" in rendered


def test_every_secret_change_is_reported_and_none_is_printed() -> None:
    rotated = {name: value[::-1] for name, value in SECRETS.items()}
    old, new = base(), base(**rotated)
    changes = diff(old, new)
    assert {(c.section, c.item, c.field) for c in changes} == {
        ("server", None, "admin_key"),
        ("storage", None, "database"),
        ("storage", None, "redis"),
        ("providers", "sim", "base_url"),
        ("providers", "sim", "api_key"),
        ("providers", "sim", "headers.x-tenant-token"),
        ("providers", "aws", "aws.access_key_id"),
        ("providers", "aws", "aws.secret_access_key"),
        ("alerts", None, "[0].url"),
    }
    assert all(change.secret for change in changes)
    rendered = all_renderings(changes)
    assert_no_secret(rendered)
    for value in rotated.values():
        assert value not in rendered


def test_keys_and_teams_models_limits_budgets_guardrails() -> None:
    new = base(
        {
            "{name: platform, limits: {rpm: 600}, budget: {usd: 500}}": (
                "{name: platform, limits: {rpm: 600, models: {chat: {rpm: 5}}}, "
                "budget: {usd: 800, alert_at: 0.8}, guardrails: {input: [{type: secrets}]}}"
            ),
            "models: [chat], limits: {rpm: 60}}": (
                "models: [chat, smart], limits: {rpm: 120, tpm: 1000}}\n"
                f'  - {{name: new-bot, hash: "{hash_key("other")}"}}'
            ),
        },
    )
    changes = diff(base(), new)
    assert paths(changes) == [
        ("teams", "platform", "limits.models.chat", "added"),
        ("teams", "platform", "budget.usd", "changed"),
        ("teams", "platform", "budget.alert_at", "changed"),
        ("teams", "platform", "guardrails", "changed"),
        ("keys", "ci-bot", "models", "changed"),
        ("keys", "ci-bot", "limits.rpm", "changed"),
        ("keys", "ci-bot", "limits.tpm", "changed"),
        ("keys", "new-bot", None, "added"),
    ]
    text = render_text(changes, "old", "new")
    assert "      + limits.models.chat: " in text
    assert "      ~ budget.usd: 500.0 → 800.0\n" in text
    assert '      ~ models: ["chat"] → ["chat", "smart"]\n' in text
    assert "      ~ limits.rpm: 60 → 120\n" in text
    assert "      ~ limits.tpm: null → 1000\n" in text


def test_settings_sections_and_what_needs_a_restart() -> None:
    extra = (
        "routing: {timeout_s: 30}\n"
        "cache: {ttl_s: 60}\n"
        "guardrails: {output: [{type: regex, pattern: secret}]}\n"
        "observability: {log_level: debug, service_name: gw}\n"
        "auth: {oidc: [{issuer: 'https://gitlab.example.com', audience: gw}]}\n"
        "apis: [{path: /sentiment, prompt: sentiment}]\n"
    )
    old = base()
    new = config_from_yaml(
        BASE.replace("KEY_HASH", KEY_HASH).replace(
            "server: {", "server: {listen: '0.0.0.0:4000', workers: 2, "
        )
        + extra,
        **{**SECRETS, "DB_PASSWORD": "changed"},
    )
    changes = diff(old, new)
    assert paths(changes) == [
        ("server", None, "listen", "changed"),
        ("server", None, "workers", "changed"),
        ("storage", None, "database", "changed"),
        ("routing", None, "timeout_s", "changed"),
        ("auth", "https://gitlab.example.com", None, "added"),
        ("observability", None, "log_level", "changed"),
        ("observability", None, "service_name", "changed"),
        ("cache", None, None, "changed"),
        ("guardrails", None, "output", "changed"),
        ("apis", "/sentiment", None, "added"),
    ]
    restart = {(c.section, c.field) for c in changes if c.restart}
    assert restart == {
        ("server", "listen"),
        ("server", "workers"),
        ("storage", "database"),
        ("observability", "service_name"),
    }
    text = render_text(changes, "old", "new")
    assert "new vs old: 10 changes, 4 need a restart\n" in text
    assert '  ~ listen: "127.0.0.1:4000" → "0.0.0.0:4000"  [restart needed]\n' in text
    assert "  ~ log_level: " in text
    assert "restart the gateway" in text
    markdown = render_text(changes, "old", "new", markdown=True)
    assert "— **restart needed**" in markdown
    assert json.loads(render_json(changes, "old", "new"))["summary"] == {
        "changes": 10,
        "restart": 4,
        "violations": 0,
    }


@pytest.mark.parametrize("setting", RESTART_ONLY)
def test_restart_flags_match_what_a_reload_refuses(setting: str) -> None:
    """`RESTART_ONLY` and `lockgate.app._restart_only_changes` name the same settings."""
    values = {
        "server.listen": "server: {listen: '127.0.0.1:4999'}\n",
        "server.workers": "server: {workers: 3}\n",
        "storage": "storage: {ledger: false}\n",
        "observability.otlp_endpoint": "observability: {otlp_endpoint: 'http://otel:4318'}\n",
        "observability.trace_sample_ratio": "observability: {trace_sample_ratio: 0.5}\n",
        "observability.service_name": "observability: {service_name: other}\n",
    }
    old, new = config_from_yaml(""), config_from_yaml(values[setting])
    assert _restart_only_changes(old, new) != []
    changes = diff(old, new)
    assert len(changes) == 1
    assert changes[0].restart


@pytest.mark.parametrize(
    "setting",
    [
        "server: {max_messages: 10}\n",
        "observability: {log_level: debug, access_log: false, metrics: false}\n",
        "routing: {retries: 0}\n",
    ],
)
def test_settings_a_reload_applies_need_no_restart(setting: str) -> None:
    old, new = config_from_yaml(""), config_from_yaml(setting)
    assert _restart_only_changes(old, new) == []
    changes = diff(old, new)
    assert changes
    assert not any(change.restart for change in changes)


def test_server_overrides_of_the_running_gateway_apply_to_the_file() -> None:
    running = snapshot(
        config_from_yaml("server: {listen: '127.0.0.1:5000'}\n"),
        None,
        key=OFFLINE_KEY,
        overrides=["listen"],
    )
    assert running.overrides == {"listen": "127.0.0.1:5000"}
    file = snap(config_from_yaml(""))
    assert paths(compare(running, file)) == [("server", None, "listen", "changed")]
    assert compare(running, with_overrides(file, running.overrides)) == []


# -- prompts --------------------------------------------------------------------------------------

VERSION = """\
model: chat
messages: [{role: user, content: "{{ text }} VARIANT"}]
input: {type: object, properties: {text: {type: string}}, required: [text]}
"""


def prompts(root: Path, files: dict[str, str]) -> PromptRegistry:
    folder = root / "prompts"
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return PromptRegistry.load(folder)


def test_prompt_versions_labels_and_canaries(tmp_path: Path) -> None:
    old = prompts(
        tmp_path / "old",
        {
            "sentiment/1.0.0.yaml": VERSION,
            "sentiment/1.1.0.yaml": VERSION.replace("VARIANT", "b"),
            "sentiment/labels.yaml": "production: 1.0.0\ncanary: {version: 1.1.0, weight: 10}\n",
            "summary/1.0.0.yaml": VERSION,
            "retired/1.0.0.yaml": VERSION,
        },
    )
    new = prompts(
        tmp_path / "new",
        {
            # 1.0.0 edited in place: a violation; 1.2.0 new; the canary weighs more.
            "sentiment/1.0.0.yaml": VERSION.replace("VARIANT", "edited"),
            "sentiment/1.1.0.yaml": VERSION.replace("VARIANT", "b"),
            "sentiment/1.2.0.yaml": VERSION.replace("VARIANT", "c"),
            "sentiment/labels.yaml": "production: 1.1.0\ncanary: {version: 1.2.0, weight: 50}\n"
            "staging: 1.2.0\n",
            "summary/1.0.0.yaml": VERSION,
            "added/1.0.0.yaml": VERSION,
            "added/labels.yaml": "production: 1.0.0\n",
        },
    )
    config = config_from_yaml("")
    changes = compare(snap(config, old), snap(config, new))
    assert paths(changes) == [
        ("prompts", "added", None, "added"),
        ("prompts", "retired", None, "removed"),
        ("prompts", "sentiment", "1.0.0", "changed"),
        ("prompts", "sentiment", "1.2.0", "added"),
        ("prompts", "sentiment", "labels.canary", "changed"),
        ("prompts", "sentiment", "labels.production", "changed"),
        ("prompts", "sentiment", "labels.staging", "added"),
    ]
    edited = changes[2]
    assert edited.violation is not None
    assert "must not change" in edited.violation
    assert edited.old == old.versions("sentiment")[0].sha256
    text = render_text(changes, "old", "new")
    assert "new vs old: 7 changes, 1 violation\n" in text
    assert "prompts\n  + added: " in text
    assert '"versions": ["1.0.0"], "labels": {"production": "1.0.0"}' in text
    assert "  - retired\n" in text
    sha_old, sha_new = old.versions("sentiment")[0].sha256, new.versions("sentiment")[0].sha256
    assert f"      ~ 1.0.0: sha256 {sha_old[:12]} → sha256 {sha_new[:12]}  [a published" in text
    assert "      + 1.2.0\n" in text
    assert "      ~ labels.canary: 1.1.0 (10%) → 1.2.0 (50%)\n" in text
    assert "      ~ labels.production: 1.0.0 → 1.1.0\n" in text
    assert "      + labels.staging: 1.2.0\n" in text
    markdown = render_text(changes, "old", "new", markdown=True)
    assert "**a published prompt version must not change" in markdown
    assert json.loads(render_json(changes, "old", "new"))["summary"]["violations"] == 1


def test_the_order_of_canaries_is_a_change(tmp_path: Path) -> None:
    labels = "a: {version: 1.0.0, weight: 10}\nb: {version: 1.0.0, weight: 20}\n"
    old = prompts(tmp_path / "old", {"p/1.0.0.yaml": VERSION, "p/labels.yaml": labels})
    swapped = "b: {version: 1.0.0, weight: 20}\na: {version: 1.0.0, weight: 10}\n"
    new = prompts(tmp_path / "new", {"p/1.0.0.yaml": VERSION, "p/labels.yaml": swapped})
    config = config_from_yaml("")
    changes = compare(snap(config, old), snap(config, new))
    assert paths(changes) == [("prompts", "p", "order of canaries", "changed")]
    assert "~ order of canaries: a, b → b, a" in render_text(changes, "old", "new")


# -- rendering ------------------------------------------------------------------------------------


def test_markdown_keeps_config_text_inert() -> None:
    """Names and values go into code spans, on one line: no @mention, link or HTML written in
    the config reaches the note."""
    old = base()
    models = (
        "models:\n"
        "  - {name: '@all', targets: [{provider: sim, model: 'x`<b>y</b>'}]}\n"
        '  - {name: "m\\n- @channel [x](https://evil.example)", targets: [{provider: sim, model: a}]}\n'
    )
    new = config_from_yaml(
        BASE.replace("KEY_HASH", KEY_HASH).replace("models:\n", models), **SECRETS
    )
    markdown = render_text(diff(old, new), "old", "new", markdown=True)
    assert "- added `@all`: ``" in markdown
    assert '"x`<b>y</b>"' in markdown
    assert "\n**models**\n" in markdown
    assert "- added `m\\x0a- @channel [x](https://evil.example)`: " in markdown
    for line in markdown.splitlines():
        if "@all" in line or "@channel" in line:
            assert line.startswith("- added `"), line
    text = render_text(diff(old, new), "old", "new")
    assert "  + m\\x0a- @channel" in text
