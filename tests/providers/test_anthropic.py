"""Conformance of the `anthropic` adapter: requests, answers and errors from recorded payloads.

Streams are in test_anthropic_stream.py. Fixtures: tests/providers/fixtures/anthropic/.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from lockgate.config.models import ProviderConfig
from lockgate.errors import BadRequest, GatewayError, UnsupportedParameter, UpstreamServerError
from lockgate.providers.anthropic import AnthropicAdapter
from lockgate.providers.registry import build_adapter

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
KEY = "sk-ant-api03-secret-key-9f8e7d"
USER = [{"role": "user", "content": "Hello"}]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def adapter(drop: bool = False, **options: Any) -> AnthropicAdapter:
    return AnthropicAdapter(
        "claude", "https://api.anthropic.com", KEY, drop_unsupported=drop, **options
    )


def translate(body: dict[str, Any], drop: bool = False) -> dict[str, Any]:
    upstream = adapter(drop).chat_request(body, "claude-sonnet-4-5")
    return json.loads(upstream.body)  # type: ignore[no-any-return]


# -- requests ---------------------------------------------------------------------------------


def test_recorded_request_translates_exactly() -> None:
    upstream = adapter().chat_request(fixture("chat_request.openai.json"), "claude-sonnet-4-5")
    assert upstream.url == "https://api.anthropic.com/v1/messages"
    assert json.loads(upstream.body) == fixture("chat_request.anthropic.json")


def test_headers_carry_key_and_version_but_no_bearer() -> None:
    headers = adapter().chat_request({"model": "m", "messages": USER}, "c").headers
    assert headers == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": KEY,
    }
    custom = adapter(api_version="2024-01-01", extra_headers={"anthropic-beta": "x"})
    headers = custom.chat_request({"model": "m", "messages": USER}, "c").headers
    assert headers["anthropic-version"] == "2024-01-01"
    assert headers["anthropic-beta"] == "x"


def test_registry_builds_it_from_config() -> None:
    config = ProviderConfig.model_validate(
        {"name": "claude", "type": "anthropic", "api_key": KEY, "drop_unsupported": True}
    )
    built = build_adapter(config)
    assert isinstance(built, AnthropicAdapter)
    request = built.chat_request({"model": "m", "messages": USER, "seed": 1}, "c")
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert "seed" not in json.loads(request.body)


def test_minimal_request_gets_default_max_tokens_and_string_content() -> None:
    assert translate({"model": "m", "messages": USER}) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hello"}],
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70, "max_tokens": 50}, 70),
    ],
)
def test_max_tokens(fields: dict[str, int], expected: int) -> None:
    assert translate({"model": "m", "messages": USER, **fields})["max_tokens"] == expected


def test_temperature_is_capped_at_anthropics_maximum() -> None:
    assert translate({"model": "m", "messages": USER, "temperature": 1.6})["temperature"] == 1.0


def test_single_stop_string_and_safety_identifier() -> None:
    body = translate({"model": "m", "messages": USER, "stop": "END", "safety_identifier": "u-9"})
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-9"}


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ],
)
def test_tool_choice(choice: object, parallel: bool | None, expected: dict[str, Any]) -> None:
    body = {"model": "m", "messages": USER, "tools": [TOOL], "tool_choice": choice}
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    result = translate(body)
    assert result["tools"] == [{"name": "f", "input_schema": {"type": "object"}}]
    assert result["tool_choice"] == expected


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "tool_choice" not in translate({"model": "m", "messages": USER, "tool_choice": "auto"})


def test_allowed_tools_choice_is_unsupported() -> None:
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}
    with pytest.raises(UnsupportedParameter):
        translate({"model": "m", "messages": USER, "tools": [TOOL], "tool_choice": choice})


SCHEMA = {"type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "rating", "schema": SCHEMA}}


def test_json_schema_becomes_a_forced_tool() -> None:
    body = translate({"model": "m", "messages": USER, "response_format": JSON_SCHEMA})
    [tool] = body["tools"]
    assert tool["name"] == "json_response"
    assert tool["input_schema"] == SCHEMA
    assert body["tool_choice"] == {
        "type": "tool",
        "name": "json_response",
        "disable_parallel_tool_use": True,
    }


def test_json_object_with_client_tools_lets_the_model_pick_any_tool() -> None:
    body = translate(
        {
            "model": "m",
            "messages": USER,
            "tools": [TOOL],
            "response_format": {"type": "json_object"},
        }
    )
    assert [tool["name"] for tool in body["tools"]] == ["f", "json_response"]
    assert body["tools"][1]["input_schema"] == {"type": "object", "properties": {}}
    assert body["tool_choice"] == {"type": "any"}


def test_text_response_format_changes_nothing() -> None:
    body = translate({"model": "m", "messages": USER, "response_format": {"type": "text"}})
    assert "tools" not in body


def test_json_schema_must_describe_an_object() -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}
    with pytest.raises(BadRequest) as info:
        translate({"model": "m", "messages": USER, "response_format": rf})
    assert info.value.param == "response_format.json_schema.schema"


def test_client_tool_named_like_the_json_tool_is_refused() -> None:
    tool = {"type": "function", "function": {"name": "json_response"}}
    with pytest.raises(BadRequest, match="json_response"):
        translate(
            {
                "model": "m",
                "messages": USER,
                "tools": [tool],
                "response_format": {"type": "json_object"},
            }
        )


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("ftp://example.com/cat.png", "messages[0].content[0].image_url.url"),
        ("data:image/png,notbase64", "messages[0].content[0].image_url.url"),
    ],
)
def test_bad_image_urls_are_400(url: str, param: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}
    with pytest.raises(BadRequest) as info:
        translate({"model": "m", "messages": [{"role": "user", "content": [part]}]})
    assert info.value.param == param


def test_pdf_file_part_becomes_a_document() -> None:
    part = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x"}}
    body = translate({"model": "m", "messages": [{"role": "user", "content": [part]}]})
    assert body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
        }
    ]


def test_tool_call_arguments_must_be_a_json_object() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1, 2"}}
    messages = [*USER, {"role": "assistant", "tool_calls": [call]}]
    with pytest.raises(BadRequest) as info:
        translate({"model": "m", "messages": messages})
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


UNSUPPORTED = [
    ("n", 2),
    ("logprobs", True),
    ("top_logprobs", 3),
    ("presence_penalty", 0.5),
    ("frequency_penalty", -0.2),
    ("logit_bias", {"50256": -100}),
    ("seed", 7),
    ("audio", {"voice": "alloy", "format": "wav"}),
    ("modalities", ["text", "audio"]),
    ("prediction", {"type": "content", "content": "x"}),
    ("reasoning_effort", "high"),
    ("vendor_option", {"nested": [1, 2]}),
]


@pytest.mark.parametrize(("param", "value"), UNSUPPORTED)
def test_unsupported_parameter_is_refused_naming_it_and_the_provider(
    param: str, value: object
) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        translate({"model": "m", "messages": USER, param: value})
    error = info.value
    assert (error.status, error.code, error.param) == (400, "unsupported_parameter", param)
    assert f"'{param}'" in error.message
    assert "'claude'" in error.message


@pytest.mark.parametrize(("param", "value"), UNSUPPORTED)
def test_unsupported_parameter_is_dropped_and_logged_when_allowed(
    param: str, value: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="lockgate.providers"):
        body = translate({"model": "m", "messages": USER, param: value}, drop=True)
    assert param not in body
    assert any(param in record.getMessage() for record in caplog.records)


def test_no_op_defaults_and_bookkeeping_fields_are_accepted_but_not_sent() -> None:
    body = translate(
        {
            "model": "m",
            "messages": USER,
            "n": 1,
            "logprobs": False,
            "presence_penalty": 0,
            "frequency_penalty": 0.0,
            "logit_bias": {},
            "seed": None,
            "store": True,
            "metadata": {"team": "a"},
            "service_tier": "auto",
        }
    )
    assert set(body) == {"model", "max_tokens", "messages"}


def test_untranslatable_content_part_is_refused_or_dropped() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}, audio]}]
    with pytest.raises(UnsupportedParameter) as info:
        translate({"model": "m", "messages": messages})
    assert info.value.param == "messages[0].content[1]"
    body = translate({"model": "m", "messages": messages}, drop=True)
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_embeddings_are_refused_with_a_clear_400() -> None:
    with pytest.raises(BadRequest, match=r"'claude' \(anthropic\) has no embeddings API"):
        adapter().embeddings_request({"model": "e", "input": "x"}, "e")


# -- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["message_text", "message_tool_use"])
def test_recorded_answer_translates_exactly(name: str) -> None:
    raw = (FIXTURES / f"{name}.json").read_bytes()
    completion = json.loads(adapter().chat_response(raw, {}))
    assert isinstance(completion.pop("created"), int)
    assert completion == fixture(f"{name}.openai.json")


def test_json_tool_answer_becomes_content() -> None:
    message = {
        "id": "msg_1",
        "model": "claude",
        "content": [
            {"type": "tool_use", "id": "t", "name": "json_response", "input": {"score": 4}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    completion = json.loads(adapter().chat_response(json.dumps(message).encode(), {}))
    choice = completion["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"score": 4}
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    message = {"id": "m", "model": "c", "content": [], "stop_reason": stop_reason}
    completion = json.loads(adapter().chat_response(json.dumps(message).encode(), {}))
    assert completion["choices"][0]["finish_reason"] == finish_reason
    assert completion["choices"][0]["message"]["content"] == ""


def test_unreadable_answer_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamServerError) as info:
        adapter().chat_response(b"<html>502 Bad Gateway</html>", {})
    assert info.value.status == 502


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "client_status", "code", "retryable"),
    [
        (400, "invalid_request_error", 400, None, False),
        (401, "authentication_error", 502, "upstream_auth_failed", False),
        (403, "permission_error", 502, "upstream_auth_failed", False),
        (404, "not_found_error", 404, "not_found_error", False),
        (413, "request_too_large", 413, "request_too_large", False),
        (429, "rate_limit_error", 429, "upstream_rate_limited", True),
        (500, "api_error", 502, "upstream_error", True),
        (529, "overloaded_error", 503, "upstream_overloaded", True),
    ],
)
def test_recorded_errors_map(
    status: int, kind: str, client_status: int, code: str | None, retryable: bool
) -> None:
    body = (FIXTURES / f"error_{status}_{kind}.json").read_bytes()
    error = adapter().error(status, {"retry-after": "7"}, body)
    assert isinstance(error, GatewayError)
    assert (error.status, error.code, error.retryable) == (client_status, code, retryable)
    upstream_message = fixture(f"error_{status}_{kind}.json")["error"]["message"]
    assert upstream_message in error.message
    if status in (429, 529):
        assert error.headers == {"retry-after": "7"}


def test_api_key_never_appears_in_an_error_message() -> None:
    body = json.dumps(
        {"type": "error", "error": {"type": "authentication_error", "message": f"bad key {KEY}"}}
    ).encode()
    for status in (400, 401, 500):
        error = adapter().error(status, {}, body)
        assert KEY not in error.message
        assert "***" in error.message


def test_non_json_error_body_is_kept_as_text() -> None:
    error = adapter().error(503, {}, b"upstream connect error")
    assert error.retryable
    assert "upstream connect error" in error.message
