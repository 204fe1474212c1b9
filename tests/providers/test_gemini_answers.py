"""Conformance of the `gemini` adapter: answers, embeddings and errors from recorded payloads."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from lockgate.errors import BadRequest, UnsupportedParameter, UpstreamClientError
from tests.providers.gemini_support import KEY, ROOT, adapter, fixture, raw, without_ids

# -- responses --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["generate_text", "generate_function_call"])
def test_recorded_answers_translate_exactly(name: str) -> None:
    completion = json.loads(adapter().chat_response(raw(f"{name}.json"), {}))
    assert isinstance(completion["created"], int)
    assert without_ids(completion) == fixture(f"{name}.openai.json")


def test_blocked_prompt_is_an_empty_content_filter_choice() -> None:
    completion = json.loads(adapter().chat_response(raw("generate_blocked_prompt.json"), {}))
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "refusal": None},
            "logprobs": None,
            "finish_reason": "content_filter",
        }
    ]
    assert completion["usage"]["prompt_tokens"] == 9


def test_several_candidates_and_finish_reasons() -> None:
    completion = json.loads(adapter().chat_response(raw("generate_two_candidates.json"), {}))
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in completion["choices"]] == [
        (0, "Paris.", "stop"),
        (1, "The capital of France is", "length"),
        (2, "", "content_filter"),
    ]  # fmt: skip


def test_model_falls_back_to_the_request() -> None:
    body = b'{"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}'
    completion = json.loads(adapter().chat_response(body, {"model": "gemini-x"}))
    assert completion["model"] == "gemini-x"
    assert completion["id"].startswith("chatcmpl-")


# -- embeddings -------------------------------------------------------------------------------


def test_recorded_embeddings_pair() -> None:
    request = fixture("embed_request.openai.json")
    upstream = adapter().embeddings_request(request, "gemini-embedding-001")
    assert upstream.url == f"{ROOT}/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert json.loads(upstream.body) == fixture("embed_request.gemini.json")
    answer = adapter().embeddings_response(raw("embed_response.gemini.json"), request)
    assert json.loads(answer) == fixture("embed_response.openai.json")


def test_embeddings_in_base64_and_from_vertex() -> None:
    request = {"model": "text-embedding-005", "input": ["a", "b"], "encoding_format": "base64"}
    answer = json.loads(adapter().embeddings_response(raw("predict_response.vertex.json"), request))
    first = base64.b64decode(answer["data"][0]["embedding"])
    assert struct.unpack("<3f", first) == pytest.approx((0.0058424533, -0.023434145, 0.01145612))
    assert answer["usage"] == {"prompt_tokens": 15, "total_tokens": 15}
    assert answer["model"] == "text-embedding-005"


def test_token_input_cannot_be_embedded() -> None:
    with pytest.raises(BadRequest) as info:
        adapter().embeddings_request({"model": "e", "input": [[1, 2, 3]]}, "emb")
    assert info.value.param == "input"
    with pytest.raises(UnsupportedParameter):
        adapter().embeddings_request({"model": "e", "input": "x", "truncate": "END"}, "emb")


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "client_status", "code", "retryable"),
    [
        ("error_400_invalid_argument", 400, 400, "invalid_argument", False),
        ("error_400_api_key_invalid", 400, 502, "upstream_auth_failed", False),
        ("error_401_unauthenticated", 401, 502, "upstream_auth_failed", False),
        ("error_403_permission_denied", 403, 502, "upstream_auth_failed", False),
        ("error_404_not_found", 404, 404, "not_found", False),
        ("error_429_resource_exhausted", 429, 429, "upstream_rate_limited", True),
        ("error_500_internal", 500, 502, "upstream_error", True),
        ("error_503_unavailable", 503, 502, "upstream_error", True),
    ],
)
def test_error_mapping(
    name: str, status: int, client_status: int, code: str, retryable: bool
) -> None:
    body = raw(f"{name}.json")
    error = adapter().error(status, {}, body)
    assert (error.status, error.code, error.retryable) == (client_status, code, retryable)
    message = json.loads(body)["error"]["message"]
    assert message in error.message
    if client_status == 502:
        assert "'gem'" in error.message


def test_retry_after_comes_from_the_header_or_retry_info() -> None:
    body = raw("error_429_resource_exhausted.json")
    error = adapter().error(429, {}, body)
    assert isinstance(error, UpstreamClientError)
    assert error.type == "rate_limit_error"
    assert error.headers == {"retry-after": "9"}
    assert adapter().error(429, {"retry-after": "3"}, body).headers == {"retry-after": "3"}
    bare = b'{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}'
    assert adapter().error(429, {}, bare).headers == {}


def test_the_key_never_appears_in_an_error() -> None:
    body = json.dumps(
        {
            "error": {
                "code": 400,
                "message": f"API key {KEY} not valid",
                "status": "INVALID_ARGUMENT",
            }
        }
    ).encode()
    error = adapter().error(400, {}, body)
    assert KEY not in error.message
    assert "***" in error.message
    assert (
        adapter()
        .error(502, {}, b"<html>Bad Gateway</html>")
        .message.endswith("<html>Bad Gateway</html>")
    )
