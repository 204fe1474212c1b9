"""SigV4: the signer against AWS's published vectors, and the headers a request gets."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from lockgate.providers.bedrock import AwsCredentials, BedrockAdapter
from lockgate.providers.bedrock.sigv4 import (
    canonical_request,
    sign_headers,
    signature,
    signing_key,
)
from tests.providers.bedrock_support import CREDENTIALS, MODEL, ROOT

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
EMPTY_HASH = hashlib.sha256(b"").hexdigest()


def test_signing_key_matches_the_aws_documentation_example() -> None:
    # "Examples of how to derive a signing key for Signature Version 4" (AWS General Reference).
    key = signing_key(SECRET, "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_get_vanilla_from_the_sigv4_test_suite() -> None:
    headers = {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"}
    canonical, signed = canonical_request("GET", "/", "", headers, EMPTY_HASH)
    assert canonical == (
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
        f"host;x-amz-date\n{EMPTY_HASH}"
    )
    assert signed == "host;x-amz-date"
    credentials = AwsCredentials("AKIDEXAMPLE", SECRET)
    assert (
        signature(credentials, canonical, "20150830T123600Z", "us-east-1", "service")
        == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_path_is_encoded_twice_and_query_sorted() -> None:
    canonical, _ = canonical_request(
        "POST", "/model/a%2Fb:0/converse", "b=2&a=1", {"host": "h"}, EMPTY_HASH
    )
    lines = canonical.split("\n")
    assert lines[1] == "/model/a%252Fb%3A0/converse"
    assert lines[2] == "a=1&b=2"


def test_session_token_is_signed() -> None:
    credentials = AwsCredentials("AKID", "secret", "session-token")
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    headers = sign_headers(
        credentials, host="h", path="/", query="", body=b"{}", region="eu-west-1",
        service="bedrock", now=now,
    )  # fmt: skip
    assert headers["x-amz-date"] == "20240501T120000Z"
    assert headers["x-amz-security-token"] == "session-token"
    assert headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKID/20240501/eu-west-1/bedrock/aws4_request, "
        "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="
    )


def test_requests_are_signed_for_the_url_they_go_to() -> None:
    adapter = BedrockAdapter("br", ROOT, "us-east-1", credentials=CREDENTIALS)
    request = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, MODEL)
    assert request.url == f"{ROOT}/model/{MODEL}/converse"
    assert request.headers["host"] == "bedrock-runtime.us-east-1.amazonaws.com"
    authorization = request.headers["authorization"]
    assert re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/us-east-1/bedrock/aws4_request, "
        r"SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}",
        authorization,
    )
    assert CREDENTIALS.secret_access_key not in str(request.headers)


def test_a_model_with_slashes_or_question_marks_stays_in_its_segment() -> None:
    adapter = BedrockAdapter("br", "http://127.0.0.1:9000", "us-east-1", credentials=CREDENTIALS)
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    request = adapter.chat_request(body, "arn:aws:bedrock:x/y?status=500")
    assert request.url == (
        "http://127.0.0.1:9000/model/arn:aws:bedrock:x%2Fy%3Fstatus=500/converse-stream"
    )
    assert request.headers["host"] == "127.0.0.1:9000"


def test_bedrock_api_key_is_a_bearer_token() -> None:
    adapter = BedrockAdapter("br", ROOT, "us-east-1", api_key="ABSKbedrock-key")
    request = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, MODEL)
    assert request.headers["authorization"] == "Bearer ABSKbedrock-key"
    assert "x-amz-date" not in request.headers
