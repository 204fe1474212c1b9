"""Conformance of the `gemini` adapter: requests (answers, embeddings and errors are in
test_gemini_answers.py, streams in test_gemini_stream.py). Fixtures: fixtures/gemini/.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lockgate.config.models import ProviderConfig
from lockgate.errors import BadRequest, UnsupportedParameter
from lockgate.providers.gemini import GeminiAdapter, VertexLocation
from lockgate.providers.registry import build_adapter
from tests.providers.gemini_support import KEY, ROOT, USER, adapter, fixture, translate

# -- requests ---------------------------------------------------------------------------------


def test_recorded_request_translates_exactly() -> None:
    body = fixture("chat_request.openai.json")
    upstream = adapter().chat_request(body, "gemini-2.5-flash")
    assert upstream.url == f"{ROOT}/v1beta/models/gemini-2.5-flash:generateContent"
    assert json.loads(upstream.body) == fixture("chat_request.gemini.json")


def test_key_goes_in_a_header_never_in_the_url() -> None:
    upstream = adapter().chat_request({"model": "m", "messages": USER, "stream": True}, "g")
    assert upstream.url == f"{ROOT}/v1beta/models/g:streamGenerateContent?alt=sse"
    assert KEY not in upstream.url
    assert upstream.headers == {"content-type": "application/json", "x-goog-api-key": KEY}


def test_model_names_are_percent_encoded_into_the_path() -> None:
    url = adapter().chat_request({"model": "m", "messages": USER}, "sim-small?status=500&x=1").url
    assert url == f"{ROOT}/v1beta/models/sim-small%3Fstatus%3D500%26x%3D1:generateContent"
    url = adapter().chat_request({"model": "m", "messages": USER}, "../files/x#y").url
    assert url == f"{ROOT}/v1beta/models/..%2Ffiles%2Fx%23y:generateContent"
    url = adapter().chat_request({"model": "m", "messages": USER}, "models/gemini-2.0-flash").url
    assert url == f"{ROOT}/v1beta/models/gemini-2.0-flash:generateContent"


def test_vertex_paths_and_bearer_token() -> None:
    vertex = GeminiAdapter(
        "vx",
        "https://europe-west4-aiplatform.googleapis.com",
        "ya29.token",
        vertex=VertexLocation("my-project", "europe-west4"),
        extra_headers={"x-goog-user-project": "billing"},
    )
    upstream = vertex.chat_request({"model": "m", "messages": USER}, "gemini-2.5-pro")
    assert upstream.url == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-project/locations/"
        "europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
    )
    assert upstream.headers == {
        "content-type": "application/json",
        "authorization": "Bearer ya29.token",
        "x-goog-user-project": "billing",
    }
    embed = vertex.embeddings_request({"model": "e", "input": "hi", "dimensions": 8}, "emb")
    assert embed.url.endswith("/publishers/google/models/emb:predict")
    assert json.loads(embed.body) == {
        "instances": [{"content": "hi"}],
        "parameters": {"outputDimensionality": 8},
    }


@pytest.mark.parametrize(
    ("config", "url"),
    [
        ({}, f"{ROOT}/v1beta/models/g:generateContent"),
        (
            {"vertex": {"project": "p1"}},
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1/"
            "publishers/google/models/g:generateContent",
        ),
        (
            {"vertex": {"project": "p1", "location": "global"}},
            "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/"
            "publishers/google/models/g:generateContent",
        ),
        ({"base_url": "http://127.0.0.1:9/"}, "http://127.0.0.1:9/v1beta/models/g:generateContent"),
    ],
)
def test_registry_builds_it_from_config(config: dict[str, Any], url: str) -> None:
    provider = ProviderConfig.model_validate(
        {"name": "gem", "type": "gemini", "api_key": KEY, "drop_unsupported": True, **config}
    )
    built = build_adapter(provider)
    request = built.chat_request({"model": "m", "messages": USER, "logit_bias": {"1": 2}}, "g")
    assert request.url == url
    assert "logit_bias" not in json.loads(request.body)


def test_vertex_is_refused_on_other_provider_types() -> None:
    with pytest.raises(ValueError, match="gemini only"):
        ProviderConfig.model_validate({"name": "o", "type": "openai", "vertex": {"project": "p"}})


def test_response_formats_and_reasoning_effort() -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {}}}
    body = {"model": "m", "messages": USER, "max_completion_tokens": 9, "max_tokens": 99}
    fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": True}}
    assert translate({**body, "response_format": fmt, "reasoning_effort": "low"})[
        "generationConfig"
    ] == {
        "maxOutputTokens": 9,
        "thinkingConfig": {"thinkingBudget": 1024},
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    json_mode = translate({**body, "response_format": {"type": "json_object"}, "stop": "END"})
    assert json_mode["generationConfig"] == {
        "maxOutputTokens": 9,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
    }
    assert "generationConfig" not in translate({"model": "m", "messages": USER})


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "f"}},
            {"mode": "ANY", "allowedFunctionNames": ["f"]},
        ),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "g"}}],
                },
            },
            {"mode": "ANY", "allowedFunctionNames": ["g"]},
        ),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
        for name in ("f", "g")
    ]
    body = translate({"model": "m", "messages": USER, "tools": tools, "tool_choice": choice})
    assert body["toolConfig"] == {"functionCallingConfig": config}
    assert body["tools"] == [{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}]


def test_allowed_tools_in_auto_mode_offers_only_those() -> None:
    tools = [{"type": "function", "function": {"name": name}} for name in ("f", "g")]
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "auto",
            "tools": [{"type": "function", "function": {"name": "g"}}],
        },
    }
    body = translate({"model": "m", "messages": USER, "tools": tools, "tool_choice": choice})
    assert body["tools"] == [{"functionDeclarations": [{"name": "g"}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


def test_audio_files_and_plain_tool_results() -> None:
    content = [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
        },
    ]
    messages = [
        {"role": "user", "content": content},
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "42 degrees"}]},
    ]  # fmt: skip
    assert translate({"model": "m", "messages": messages})["contents"] == [
        {
            "role": "user",
            "parts": [
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
            ],
        },
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "f", "response": {"result": "42 degrees"}}}],
        },
    ]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "tool", "tool_call_id": "nope", "content": "x"}], "messages[0].tool_call_id"),
        (
            [{"role": "assistant", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
            ]}],
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}],
            "messages[0].content[0].image_url.url",
        ),
        (
            [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}],
            "messages[0].content[0].file.file_id",
        ),
    ],
)  # fmt: skip
def test_untranslatable_messages_are_400_naming_the_field(
    messages: list[dict[str, Any]], param: str
) -> None:
    with pytest.raises(BadRequest) as info:
        translate({"model": "m", "messages": messages})
    assert info.value.param == param


@pytest.mark.parametrize(
    "extra",
    [
        {"logit_bias": {"50256": -100}},
        {"logprobs": True},
        {"top_logprobs": 2},
        {"parallel_tool_calls": False},
        {"audio": {"voice": "alloy", "format": "wav"}},
        {"modalities": ["text", "audio"]},
        {"store": True},
        {"service_tier": "flex"},
        {"vendor_option": 1},
    ],
)
def test_unsupported_parameters_are_rejected_or_dropped(extra: dict[str, Any]) -> None:
    (name,) = extra
    with pytest.raises(UnsupportedParameter) as info:
        translate({"model": "m", "messages": USER, **extra})
    assert info.value.param == name
    assert "'gem'" in info.value.message
    assert translate({"model": "m", "messages": USER, **extra}, drop=True) == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}]
    }


def test_harmless_values_and_hints_pass() -> None:
    body = {"model": "m", "messages": USER, "logprobs": False, "parallel_tool_calls": True}
    hints = {"store": False, "user": "u", "metadata": {"k": "v"}, "service_tier": "default"}
    assert translate({**body, **hints, "modalities": ["text"]}) == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}]
    }


def test_custom_tools_are_refused() -> None:
    tools = [{"type": "custom", "custom": {"name": "grammar"}}]
    with pytest.raises(BadRequest) as info:
        translate({"model": "m", "messages": USER, "tools": tools})
    assert info.value.param == "tools[0].type"
