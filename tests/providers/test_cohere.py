"""The `cohere` adapter: request translation, answers, embeddings, errors, unsupported params."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from lockgate.config.models import ProviderConfig
from lockgate.errors import (
    BadRequest,
    UnsupportedParameter,
    UpstreamClientError,
    UpstreamServerError,
)
from lockgate.providers.registry import build_adapter
from tests.providers.cohere_support import KEY, MODEL, ROOT, adapter, fixture, raw, translate

HI: dict[str, Any] = {"model": "command", "messages": [{"role": "user", "content": "Hi"}]}


def test_request_matches_the_documented_shape() -> None:
    upstream = adapter().chat_request(fixture("chat_request.openai.json"), MODEL)
    assert upstream.url == f"{ROOT}/v2/chat"
    assert upstream.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(upstream.body) == fixture("chat_request.cohere.json")


def test_registry_builds_it_with_the_default_base_url() -> None:
    provider = ProviderConfig.model_validate({"name": "co", "type": "cohere", "api_key": "k"})
    built = build_adapter(provider)
    assert built.chat_request(dict(HI), MODEL).url == "https://api.cohere.com/v2/chat"


def test_developer_messages_text_parts_and_json_modes() -> None:
    body = {
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "top_p": 0.0,
        "top_k": 5,
    }  # fmt: skip
    sent = translate(body)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "ab"},
    ]
    assert sent["response_format"] == {"type": "json_object", "json_schema": {"type": "object"}}
    assert sent["p"] == 0.01
    assert sent["k"] == 5
    plain = translate({**HI, "response_format": {"type": "json_object"}})
    assert plain["response_format"] == {"type": "json_object"}
    assert "response_format" not in translate({**HI, "response_format": {"type": "text"}})


def test_tool_choice_translation() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    other = {"type": "function", "function": {"name": "g", "strict": True}}
    assert translate({**HI, "tools": [tool], "tool_choice": "none"})["tool_choice"] == "NONE"
    assert "tool_choice" not in translate({**HI, "tools": [tool], "tool_choice": "auto"})
    named = {"type": "function", "function": {"name": "g"}}
    sent = translate({**HI, "tools": [tool, other], "tool_choice": named})
    assert sent["tool_choice"] == "REQUIRED"
    assert [t["function"]["name"] for t in sent["tools"]] == ["g"]
    assert sent["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert sent["strict_tools"] is True
    with pytest.raises(BadRequest):
        missing = {"type": "function", "function": {"name": "x"}}
        translate({**HI, "tools": [tool], "tool_choice": missing})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("logit_bias", {"1": 2}),
        ("parallel_tool_calls", False),
        ("audio", {"voice": "alloy"}),
        ("reasoning_effort", "high"),
        ("made_up", 1),
    ],
)
def test_unsupported_parameters_are_refused_or_dropped(field: str, value: object) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        translate({**HI, field: value})
    assert info.value.param == field
    assert field not in translate({**HI, field: value}, drop=True)


def test_no_op_defaults_pass_and_audio_parts_are_refused() -> None:
    sent = translate({**HI, "n": 1, "logprobs": False, "parallel_tool_calls": True, "store": True})
    assert set(sent) == {"model", "messages"}
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(UnsupportedParameter) as info:
        translate({"messages": [{"role": "user", "content": [audio]}]})
    assert info.value.param == "messages[0].content[0]"


def test_text_answer() -> None:
    completion = json.loads(adapter().chat_response(raw("chat_text.json"), {"model": MODEL}))
    assert completion["object"] == "chat.completion"
    assert completion["model"] == MODEL
    message = completion["choices"][0]["message"]
    assert (
        message["content"]
        == "Coca-Cola is a carbonated soft drink sold in more than 200 countries."
    )
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"]["prompt_tokens"] == 186
    assert completion["usage"]["completion_tokens"] == 93
    assert completion["usage"]["total_tokens"] == 279


def test_tool_call_answer() -> None:
    completion = json.loads(adapter().chat_response(raw("chat_tool_call.json"), {"model": MODEL}))
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["get_weather_p1t92w7gfgq7", "get_weather_ay6nmvjgp9vn"]
    assert json.loads(calls[1]["function"]["arguments"]) == {"location": "Brasilia"}
    assert completion["usage"]["prompt_tokens"] == 913


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("COMPLETE", "stop"), ("STOP_SEQUENCE", "stop"), ("MAX_TOKENS", "length")],
)
def test_finish_reasons_and_billed_units_fallback(reason: str, expected: str) -> None:
    answer = {
        "id": "x",
        "finish_reason": reason,
        "message": {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
        "usage": {"billed_units": {"input_tokens": 4, "output_tokens": 2}},
    }
    completion = json.loads(adapter().chat_response(json.dumps(answer).encode(), {}))
    assert completion["choices"][0]["finish_reason"] == expected
    assert completion["usage"]["total_tokens"] == 6


def test_error_finish_reason_is_a_retryable_failure() -> None:
    answer = {"id": "x", "finish_reason": "ERROR", "message": {"role": "assistant"}}
    with pytest.raises(UpstreamServerError) as info:
        adapter().chat_response(json.dumps(answer).encode(), {})
    assert info.value.retryable is True
    assert info.value.status == 502


def test_embeddings_request_and_answers() -> None:
    body = {"model": "embed", "input": ["hello", "goodbye"], "dimensions": 4, "user": "u"}
    upstream = adapter().embeddings_request(body, "embed-v4.0")
    assert upstream.url == f"{ROOT}/v2/embed"
    assert json.loads(upstream.body) == {
        "model": "embed-v4.0",
        "texts": ["hello", "goodbye"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "output_dimension": 4,
    }
    floats = json.loads(adapter().embeddings_response(raw("embed_response.json"), body))
    assert floats["data"][1]["embedding"] == [-0.5, 0.125, 0.0625, 1.0]
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    encoded = {**body, "encoding_format": "base64"}
    answer = json.loads(adapter().embeddings_response(raw("embed_response.json"), encoded))
    vector = struct.unpack("<4f", base64.b64decode(answer["data"][1]["embedding"]))
    assert vector == (-0.5, 0.125, 0.0625, 1.0)
    query = adapter().embeddings_request({"input": "q", "input_type": "search_query"}, "e")
    assert json.loads(query.body)["input_type"] == "search_query"
    with pytest.raises(BadRequest):
        adapter().embeddings_request({"input": [1, 2, 3]}, "e")
    with pytest.raises(UnsupportedParameter):
        adapter().embeddings_request({"input": "x", "extra": 1}, "e")


@pytest.mark.parametrize(
    ("status", "gateway_status", "code", "retryable"),
    [
        (400, 400, None, False),
        (422, 400, None, False),
        (401, 502, "upstream_auth_failed", False),
        (403, 502, "upstream_auth_failed", False),
        (498, 502, "upstream_auth_failed", False),
        (404, 404, None, False),
        (429, 429, "upstream_rate_limited", True),
        (500, 502, "upstream_error", True),
        (503, 502, "upstream_error", True),
    ],
)
def test_error_mapping(status: int, gateway_status: int, code: str | None, retryable: bool) -> None:
    body = json.dumps({"id": "e1", "message": f"bad thing with key {KEY}"}).encode()
    error = adapter().error(status, {"retry-after": "7"}, body)
    assert error.status == gateway_status
    assert error.code == code
    assert error.retryable is retryable
    assert KEY not in error.message
    assert "bad thing" in error.message
    if status == 429:
        assert isinstance(error, UpstreamClientError)
        assert error.headers == {"retry-after": "7"}


def test_error_bodies_that_are_not_json() -> None:
    error = adapter().error(500, {}, b"<html>oops</html>")
    assert "oops" in error.message


def test_json_mode_beside_tools_is_refused_or_dropped() -> None:
    from lockgate.config.models import ProviderConfig
    from lockgate.errors import UnsupportedParameter
    from lockgate.providers.registry import build_adapter

    def body() -> dict[str, object]:
        return {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "response_format": {"type": "json_object"},
        }

    strict = build_adapter(ProviderConfig(name="c", type="cohere", api_key="k"))
    with pytest.raises(UnsupportedParameter) as info:
        strict.chat_request(body(), "command-a")
    assert info.value.param == "response_format"
    lenient = build_adapter(
        ProviderConfig(name="c", type="cohere", api_key="k", drop_unsupported=True)
    )
    sent = json.loads(lenient.chat_request(body(), "command-a").body)
    assert "response_format" not in sent
    assert sent["tools"]
