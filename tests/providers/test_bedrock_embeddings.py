"""The `bedrock` adapter's embeddings: InvokeModel bodies of Titan and Cohere Embed models."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from typing import Any

import pytest
from yarl import URL

from lockgate.errors import BadRequest, UnsupportedParameter, UpstreamServerError
from lockgate.providers.bedrock import BedrockAdapter
from lockgate.providers.bedrock.sigv4 import canonical_request, signature
from tests.providers.bedrock_support import CREDENTIALS, ROOT, adapter

TITAN = "amazon.titan-embed-text-v2:0"
TITAN_V1 = "amazon.titan-embed-text-v1"
COHERE = "cohere.embed-english-v3"
PROFILE = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.cohere.embed-multilingual-v3"
VECTOR = [0.25, -0.5, 0.125]


def request_body(body: dict[str, Any], model: str, drop: bool = False) -> Any:
    return json.loads(adapter(drop).embeddings_request(body, model).body)


def test_titan_request_is_a_signed_invoke_of_one_text() -> None:
    sent = {"model": "embed", "input": "hello", "dimensions": 512, "user": "u1"}
    request = adapter().embeddings_request(sent, TITAN)
    assert request.url == f"{ROOT}/model/{TITAN}/invoke"
    assert URL(request.url).raw_path == f"/model/{TITAN}/invoke"  # `:` needs no encoding
    assert json.loads(request.body) == {"inputText": "hello", "dimensions": 512, "normalize": True}
    assert sent["model"] == TITAN  # the answer names the upstream model
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["host"] == "bedrock-runtime.us-east-1.amazonaws.com"
    match = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/(\d{8})/us-east-1/bedrock/aws4_request, "
        r"SignedHeaders=host;x-amz-date, Signature=([0-9a-f]{64})",
        headers["authorization"],
    )
    assert match is not None
    assert match.group(1) == headers["x-amz-date"][:8]
    # The signature covers the path as sent, encoded once more, and the body.
    canonical, _ = canonical_request(
        "POST",
        URL(request.url).raw_path,
        "",
        {"host": headers["host"], "x-amz-date": headers["x-amz-date"]},
        hashlib.sha256(request.body).hexdigest(),
    )
    assert "\n/model/amazon.titan-embed-text-v2%3A0/invoke\n" in canonical
    expected = signature(CREDENTIALS, canonical, headers["x-amz-date"], "us-east-1", "bedrock")
    assert match.group(2) == expected
    assert CREDENTIALS.secret_access_key not in str(headers)


def test_an_inference_profile_arn_stays_in_its_path_segment() -> None:
    request = adapter().embeddings_request({"input": ["a"]}, PROFILE)
    assert URL(request.url).raw_path == (
        "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile"
        "%2Fus.cohere.embed-multilingual-v3/invoke"
    )


def test_bedrock_api_key_is_a_bearer_token() -> None:
    keyed = BedrockAdapter("br", ROOT, "us-east-1", api_key="ABSKbedrock-key")
    request = keyed.embeddings_request({"input": "x"}, TITAN)
    assert request.headers["authorization"] == "Bearer ABSKbedrock-key"
    assert "x-amz-date" not in request.headers


def test_cohere_request_takes_a_list() -> None:
    assert request_body({"input": ["a", "b"], "encoding_format": "base64"}, COHERE) == {
        "texts": ["a", "b"],
        "input_type": "search_document",
        "embedding_types": ["float"],
    }
    body = request_body({"input": "q", "input_type": "search_query"}, PROFILE)
    assert body["texts"] == ["q"]
    assert body["input_type"] == "search_query"


def test_titan_refuses_more_than_one_text() -> None:
    assert request_body({"input": ["only one"]}, TITAN)["inputText"] == "only one"
    with pytest.raises(BadRequest, match="one text per call") as info:
        adapter().embeddings_request({"input": ["a", "b"]}, TITAN)
    assert info.value.code == "unsupported_parameter"
    assert info.value.param == "input"


@pytest.mark.parametrize("model", [TITAN, COHERE])
@pytest.mark.parametrize("value", [[1, 2, 3], [[1, 2], [3]], [], ["a", 1]])
def test_token_arrays_and_empty_input_are_400(model: str, value: object) -> None:
    with pytest.raises(BadRequest, match="embeds text only") as info:
        adapter().embeddings_request({"input": value}, model)
    assert info.value.code == "unsupported_parameter"
    assert info.value.param == "input"


@pytest.mark.parametrize("dimensions", [256, 512, 1024])
def test_titan_v2_dimensions(dimensions: int) -> None:
    assert request_body({"input": "x", "dimensions": dimensions}, TITAN)["dimensions"] == dimensions


@pytest.mark.parametrize("dimensions", [128, 1536, 0, True])
def test_other_titan_dimensions_are_400_even_with_drop(dimensions: object) -> None:
    for drop in (False, True):
        with pytest.raises(BadRequest, match="256, 512, 1024 only") as info:
            request_body({"input": "x", "dimensions": dimensions}, TITAN, drop)
        assert info.value.param == "dimensions"
        assert info.value.code == "unsupported_parameter"


@pytest.mark.parametrize("model", [COHERE, TITAN_V1])
def test_dimensions_elsewhere_are_rejected_or_dropped(model: str) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        request_body({"input": "x", "dimensions": 256}, model)
    assert info.value.param == "dimensions"
    assert "'br'" in info.value.message
    body = request_body({"input": "x", "dimensions": 256}, model, drop=True)
    assert "dimensions" not in body
    assert "output_dimension" not in body


def test_null_dimensions_are_absent() -> None:
    assert request_body({"input": "x", "dimensions": None}, COHERE)["texts"] == ["x"]
    assert "dimensions" not in request_body({"input": "x", "dimensions": None}, TITAN)


def test_titan_v1_body_is_input_text_only() -> None:
    assert request_body({"input": "x"}, TITAN_V1) == {"inputText": "x"}


def test_unknown_parameters_follow_the_rule() -> None:
    with pytest.raises(UnsupportedParameter) as info:
        request_body({"input": "x", "input_type": "search_query"}, TITAN)
    assert info.value.param == "input_type"
    assert request_body({"input": "x", "truncate": "END"}, COHERE, drop=True)["texts"] == ["x"]


def test_other_models_are_a_clear_400() -> None:
    with pytest.raises(BadRequest, match="Amazon Titan") as info:
        adapter().embeddings_request({"input": "x"}, "anthropic.claude-3-haiku-20240307-v1:0")
    assert info.value.code == "unsupported_operation"
    assert info.value.param == "model"


def answer(value: dict[str, Any], request: dict[str, Any]) -> Any:
    return json.loads(adapter().embeddings_response(json.dumps(value).encode(), request))


def test_titan_answer_becomes_an_openai_list() -> None:
    titan = {
        "embedding": VECTOR,
        "inputTextTokenCount": 7,
        "embeddingsByType": {"float": VECTOR},
    }
    assert answer(titan, {"model": TITAN, "input": "hello"}) == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": VECTOR}],
        "model": TITAN,
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }


@pytest.mark.parametrize("embeddings", [[VECTOR, VECTOR[::-1]], {"float": [VECTOR, VECTOR[::-1]]}])
def test_cohere_answers_of_both_response_types(embeddings: object) -> None:
    cohere = {
        "embeddings": embeddings,
        "id": "5d8c",
        "texts": ["hello", "world!"],
        "response_type": "embeddings_by_type" if isinstance(embeddings, dict) else "floats",
    }
    result = answer(cohere, {"model": COHERE, "input": ["hello", "world!"]})
    assert [item["embedding"] for item in result["data"]] == [VECTOR, VECTOR[::-1]]
    assert [item["index"] for item in result["data"]] == [0, 1]
    assert result["model"] == COHERE
    # No token count in a Cohere answer: characters / 4, rounded up, per text.
    assert result["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


def test_base64_is_little_endian_float32() -> None:
    titan = {"embedding": VECTOR, "inputTextTokenCount": 1}
    result = answer(titan, {"model": TITAN, "input": "x", "encoding_format": "base64"})
    encoded = result["data"][0]["embedding"]
    assert struct.unpack("<3f", base64.b64decode(encoded)) == tuple(VECTOR)
    cohere = {"embeddings": {"float": [VECTOR]}, "id": "x", "texts": ["x"]}
    result = answer(cohere, {"model": COHERE, "input": ["x"], "encoding_format": "base64"})
    assert result["data"][0]["embedding"] == encoded


@pytest.mark.parametrize(
    "body",
    [b"<html>", b"[]", b'{"embedding": "x"}', b'{"embeddings": {"int8": [[1]]}}', b"{}"],
)
def test_unreadable_answers_are_502(body: bytes) -> None:
    with pytest.raises(UpstreamServerError) as info:
        adapter().embeddings_response(body, {"model": TITAN, "input": "x"})
    assert info.value.code == "upstream_invalid_response"
