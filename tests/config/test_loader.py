"""Every configuration mistake is reported with file, line, key path and a useful message."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.config.loader import ConfigError, load_config, parse_config

GOOD = """\
server:
  listen: 0.0.0.0:4100
  workers: 2
providers:
  - {name: openai, type: openai, api_key: "${OPENAI_API_KEY}"}
  - name: az
    type: azure
    base_url: https://res.openai.azure.com/
    api_key: ${AZURE_KEY:-fallback}
models:
  - name: gpt-4o-mini
    targets: [{provider: openai, model: gpt-4o-mini}]
  - name: "openai/*"
    targets: [{provider: openai, model: "*", weight: 2}]
routing: {timeout_s: 30, deadline_s: 120}
"""


def errors_of(text: str, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="lockgate.yaml", env=env)
    return [str(issue) for issue in info.value.issues]


def test_valid_config_with_interpolation() -> None:
    config = parse_config(GOOD, env={"OPENAI_API_KEY": "sk-1"})
    assert config.server.port == 4100
    assert config.server.host == "0.0.0.0"
    assert config.providers[0].api_key is not None
    assert config.providers[0].api_key.get_secret_value() == "sk-1"
    assert config.providers[1].api_key is not None
    assert config.providers[1].api_key.get_secret_value() == "fallback"
    assert config.providers[1].base_url == "https://res.openai.azure.com"
    assert config.models[1].targets[0].weight == 2
    assert config.routing.deadline_s == 120


def test_empty_file_gives_defaults() -> None:
    config = parse_config("", env={})
    assert config.server.listen == "127.0.0.1:4000"
    assert config.server.max_body_bytes == 8 * 1024 * 1024
    assert config.storage.database == "sqlite:///./lockgate.db"


def test_missing_variable_names_it_and_its_line() -> None:
    assert errors_of(GOOD) == [
        "lockgate.yaml:5: providers[0].api_key: environment variable OPENAI_API_KEY is not set "
        "(write ${OPENAI_API_KEY:-} to make it optional)"
    ]


def test_empty_default_and_dollar_escape() -> None:
    config = parse_config(
        'storage: {redis: "${REDIS_URL:-}"}\n'
        'providers: [{name: p, type: openai, headers: {x-cost: "$$5"}}]\n',
        env={},
    )
    assert config.storage.redis is None
    assert config.providers[0].headers == {"x-cost": "$5"}


def test_unknown_key_suggests_the_closest() -> None:
    assert errors_of("server:\n  wokers: 2\n") == [
        "lockgate.yaml:2: server.wokers: unknown key 'wokers' (did you mean 'workers'?)"
    ]


def test_unknown_key_inside_a_list_item_suggests_the_closest() -> None:
    text = "providers:\n  - name: a\n    type: openai\n    api_kee: x\n"
    assert errors_of(text) == [
        "lockgate.yaml:4: providers[0].api_kee: unknown key 'api_kee' (did you mean 'api_key'?)"
    ]


def test_unknown_section_lists_the_known_ones() -> None:
    (error,) = errors_of("zzz: 1\n")
    assert error.startswith("lockgate.yaml:1: zzz: unknown key 'zzz'; expected one of: ")
    assert "models" in error
    assert "providers" in error


def test_wrong_type_and_range() -> None:
    assert errors_of("server:\n  workers: many\nrouting:\n  timeout_s: 0\n") == [
        "lockgate.yaml:2: server.workers: Input should be a valid integer, unable to parse string "
        "as an integer",
        "lockgate.yaml:4: routing.timeout_s: Input should be greater than 0",
    ]


def test_missing_required_key() -> None:
    assert errors_of("providers:\n  - name: a\n") == [
        "lockgate.yaml:2: providers[0].type: required key is missing"
    ]


def test_unknown_provider_type_lists_choices() -> None:
    (error,) = errors_of("providers:\n  - {name: a, type: opneai}\n")
    assert error.startswith("lockgate.yaml:2: providers[0].type: Input should be ")
    assert "'openai'" in error
    assert "'azure'" in error


def test_invalid_listen_address() -> None:
    assert errors_of("server: {listen: localhost}\n") == [
        "lockgate.yaml:1: server.listen: Value error, expected host:port (e.g. 127.0.0.1:4000), "
        "got 'localhost'"
    ]


def test_bad_urls() -> None:
    text = (
        "storage: {database: 'mysql://x', redis: 'http://r'}\n"
        "providers: [{name: a, type: openai, base_url: 'ftp://x'}]\n"
    )
    assert errors_of(text) == [
        "lockgate.yaml:1: storage.database: Value error, expected a sqlite:/// or postgresql:// URL",
        "lockgate.yaml:1: storage.redis: Value error, expected a redis://, rediss:// or unix:// URL",
        "lockgate.yaml:2: providers[0].base_url: Value error, expected an http:// or https:// URL",
    ]


def test_model_without_targets_and_with_two_globs() -> None:
    text = "models:\n  - name: a\n    targets: []\n  - name: '*/*'\n    targets: [{provider: p, model: m}]\n"
    assert errors_of(text) == [
        "lockgate.yaml:2: models[0]: Value error, a model needs `targets` or `rules`",
        "lockgate.yaml:4: models[1].name: Value error, a model name may hold at most one `*`",
    ]


def test_reference_errors() -> None:
    text = """\
providers:
  - {name: openai, type: openai}
  - {name: openai, type: openai}
  - {name: az, type: azure}
models:
  - name: a
    targets: [{provider: opnai, model: x}]
  - name: a
    targets: [{provider: openai, model: "x-*"}]
"""
    assert errors_of(text) == [
        "lockgate.yaml:3: providers[1].name: duplicate provider name 'openai'",
        "lockgate.yaml:8: models[1].name: duplicate model name 'a'",
        "lockgate.yaml:7: models[0].targets[0].provider: unknown provider 'opnai' "
        "(did you mean 'openai'?)",
        "lockgate.yaml:9: models[1].targets[0].model: `*` in a target model needs a `*` in the "
        "model name it stands for",
        "lockgate.yaml:4: providers[2].base_url: azure needs base_url, e.g. "
        "https://RESOURCE.openai.azure.com",
    ]


def test_unknown_provider_with_no_close_match_lists_declared() -> None:
    text = "providers: [{name: openai, type: openai}]\nmodels: [{name: a, targets: [{provider: zz, model: m}]}]\n"
    assert errors_of(text) == [
        "lockgate.yaml:2: models[0].targets[0].provider: unknown provider 'zz'; "
        "declared providers: openai"
    ]


def test_yaml_syntax_error_has_a_line() -> None:
    (error,) = errors_of("server:\n  listen: [1, 2\nmodels: []\n")
    assert error.startswith("lockgate.yaml:")
    assert "invalid YAML" in error


def test_duplicate_yaml_key_is_an_error() -> None:
    (error,) = errors_of("server: {}\nserver: {}\n")
    assert "invalid YAML" in error
    assert "duplicate" in error
    assert error.startswith("lockgate.yaml:2:")


def test_top_level_must_be_a_mapping() -> None:
    assert errors_of("- a\n- b\n") == ["lockgate.yaml:1: the file must hold a mapping of sections"]


def test_several_errors_are_reported_together() -> None:
    assert len(errors_of("server: {wokers: 1, listen: nope}\nrouting: {timeout_s: -1}\n")) == 3


def test_load_config_reads_a_file_and_reports_unreadable_ones(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text("server: {workers: 3}\n")
    assert load_config(path, env={}).server.workers == 3
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml", env={})
    assert str(info.value).startswith(f"{tmp_path / 'missing.yaml'}: cannot read")


def test_secrets_are_not_echoed_in_errors() -> None:
    (error,) = errors_of("providers: [{name: a, type: openai, api_key: [sk-live-123]}]\n")
    assert "sk-live-123" not in error
    assert "providers[0].api_key" in error
