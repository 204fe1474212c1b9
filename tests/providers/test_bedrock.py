"""Conformance of the `bedrock` adapter: requests, answers and errors (fixtures/bedrock/)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lockgate.errors import (
    BadRequest,
    UnsupportedParameter,
    UpstreamClientError,
    UpstreamServerError,
)
from tests.providers.bedrock_support import MODEL, adapter, fixture, raw, translate

USER = [{"role": "user", "content": "Hello"}]
ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


def test_request_translation_matches_the_fixture() -> None:
    assert translate(fixture("chat_request.openai.json")) == fixture("chat_request.bedrock.json")


def test_stream_request_goes_to_converse_stream() -> None:
    request = adapter().chat_request({"messages": USER, "stream": True}, MODEL)
    assert request.url.endswith(f"/model/{MODEL}/converse-stream")
    assert json.loads(request.body) == {
        "messages": [{"role": "user", "content": [{"text": "Hello"}]}]
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "f"}}, {"tool": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: object, expected: dict[str, Any]) -> None:
    tool = {"type": "function", "function": {"name": "f"}}
    body = translate({"messages": USER, "tools": [tool], "tool_choice": choice})
    assert body["toolConfig"]["toolChoice"] == expected
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {
        "json": {"type": "object", "properties": {}}
    }


def test_json_mode_is_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"score": {"type": "number"}}}
    body = translate(
        {
            "messages": USER,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "r", "schema": schema},
            },
        }
    )
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "json_response"}}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": schema}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"seed": 7}, "seed"),
        ({"n": 2}, "n"),
        ({"tool_choice": "none", "tools": [{"type": "function", "function": {"name": "f"}}]}, "tool_choice"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]},
         "messages[0].content[0].image_url.url"),
    ],
)  # fmt: skip
def test_unsupported_parameters_are_400_naming_them(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        translate({"messages": USER, **extra})
    assert info.value.code == "unsupported_parameter"
    assert info.value.param == param
    assert "'br'" in info.value.message


def test_drop_unsupported_drops_them() -> None:
    body = translate({"messages": USER, "seed": 7, "n": 1, "presence_penalty": 0}, drop=True)
    assert body == {"messages": [{"role": "user", "content": [{"text": "Hello"}]}]}


def test_bad_image_data_url_is_400() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}
    with pytest.raises(BadRequest, match="png, jpeg, gif or webp"):
        translate({"messages": [{"role": "user", "content": [image]}]})


@pytest.mark.parametrize("name", ["converse_text", "converse_tool_use"])
def test_answers_become_chat_completions(name: str) -> None:
    request = {"model": MODEL, "messages": USER}
    completion = json.loads(adapter().chat_response(raw(f"{name}.json"), request))
    assert completion.pop("id").startswith("chatcmpl-")
    assert isinstance(completion.pop("created"), int)
    assert completion == fixture(f"{name}.openai.json")


def test_json_mode_answer_is_content() -> None:
    answer = {
        "output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "t1", "name": "json_response", "input": {"score": 3}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 2},
    }  # fmt: skip
    completion = json.loads(adapter().chat_response(json.dumps(answer).encode(), {"model": MODEL}))
    choice = completion["choices"][0]
    assert choice["message"]["content"] == '{"score":3}'
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_unreadable_answer_is_502() -> None:
    with pytest.raises(UpstreamServerError) as info:
        adapter().chat_response(b"<html>", {})
    assert info.value.code == "upstream_invalid_response"


def _error(status: int, kind: str | None, message: str) -> Any:
    headers = {"x-amzn-ErrorType": f"{kind}{ERROR_NAMESPACE}"} if kind else {}
    return adapter().error(status, headers, json.dumps({"message": message}).encode())


@pytest.mark.parametrize(
    ("status", "kind", "gateway_status", "code", "retryable"),
    [
        (429, "ThrottlingException", 429, "upstream_rate_limited", True),
        (503, "ServiceUnavailableException", 503, "upstream_overloaded", True),
        (429, "ModelNotReadyException", 503, "upstream_overloaded", True),
        (500, "InternalServerException", 502, "upstream_error", True),
        (400, "ValidationException", 400, None, False),
        (404, "ResourceNotFoundException", 404, "resource_not_found", False),
        (403, "AccessDeniedException", 502, "upstream_auth_failed", False),
        (403, "UnrecognizedClientException", 502, "upstream_auth_failed", False),
    ],
)
def test_error_mapping(
    status: int, kind: str, gateway_status: int, code: str | None, retryable: bool
) -> None:
    error = _error(status, kind, "The thing failed.")
    assert error.status == gateway_status
    assert error.code == code
    assert error.retryable is retryable
    if 400 <= gateway_status < 500 and gateway_status != 429:
        assert isinstance(error, UpstreamClientError)
        assert error.message == "The thing failed."


def test_error_messages_never_carry_the_secret() -> None:
    secret = adapter()._secrets[0]
    error = _error(403, "InvalidSignatureException", f"signature of {secret} is wrong")
    assert secret not in error.message
    assert "***" in error.message
