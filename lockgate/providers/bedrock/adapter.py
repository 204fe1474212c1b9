"""AWS Bedrock's Converse API (`POST {base_url}/model/{modelId}/converse`, streaming:
`/converse-stream`) for chat and InvokeModel (`/invoke`, Amazon Titan and Cohere Embed models)
for embeddings, translated to and from OpenAI's, signed with SigV4 (service `bedrock`).

Translation only (no I/O): `request.py` builds the chat body, `response.py` and `stream.py`
translate answers back, `embeddings.py` both directions of embeddings, `errors.py` maps
failures, `sigv4.py` signs. The model id is percent-encoded into the path (inference profile
ARNs hold `/` and `:`), and the path is signed exactly as the transport will send it. Without
an AWS key pair a Bedrock API key is sent as a bearer token.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
from yarl import URL

from lockgate.errors import GatewayError
from lockgate.providers.base import UpstreamRequest
from lockgate.providers.bedrock.embeddings import embeddings_list, invoke_body
from lockgate.providers.bedrock.errors import bedrock_error, error_fields
from lockgate.providers.bedrock.request import converse_body
from lockgate.providers.bedrock.response import chat_completion
from lockgate.providers.bedrock.sigv4 import AwsCredentials, sign_headers
from lockgate.providers.bedrock.stream import BedrockStreamParser

__all__ = ["SERVICE", "BedrockAdapter", "bedrock_base_url"]

SERVICE = "bedrock"


def bedrock_base_url(region: str) -> str:
    return f"https://bedrock-runtime.{region}.amazonaws.com"


class BedrockAdapter:
    """One AWS account and region."""

    def __init__(
        self,
        name: str,
        base_url: str,
        region: str,
        *,
        credentials: AwsCredentials | None = None,
        api_key: str | None = None,
        drop_unsupported: bool = False,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._base = base_url.rstrip("/")
        self._region = region
        self._credentials = credentials
        self._api_key = api_key
        self._drop = drop_unsupported
        self._headers = {"content-type": "application/json", **(extra_headers or {})}
        secrets = [api_key]
        if credentials is not None:
            secrets += [credentials.secret_access_key, credentials.session_token]
        self._secrets = tuple(secret for secret in secrets if secret)

    def chat_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        body["model"] = model  # later stages (stream parser, logs) see the upstream model
        payload = orjson.dumps(converse_body(body, self.name, self._drop))
        method = "converse-stream" if body.get("stream") is True else "converse"
        return self._post(model, method, payload)

    def embeddings_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        payload = orjson.dumps(invoke_body(body, model, self.name, self._drop))
        body["model"] = model  # the answer names the upstream model
        return self._post(model, "invoke", payload)

    def chat_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        model = str(request.get("model", ""))
        return chat_completion(body, self.name, model, int(time.time()))

    def embeddings_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        return embeddings_list(body, self.name, request)

    def stream_parser(self, body: dict[str, Any]) -> BedrockStreamParser:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        model = str(body.get("model", ""))
        return BedrockStreamParser(self.name, model, include_usage, int(time.time()), self._scrub)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        """Map an upstream error answer; the message is kept, any credential in it is not."""
        kind, message = error_fields(headers, body)
        retry_after = headers.get("retry-after")
        return bedrock_error(self.name, status, kind, self._scrub(message), retry_after)

    def _post(self, model: str, method: str, payload: bytes) -> UpstreamRequest:
        """`POST {base}/model/{modelId}/{method}`, signed as the transport will send it."""
        url = URL(f"{self._base}/model/{quote(model, safe='')}/{method}")
        headers = dict(self._headers)
        if self._credentials is not None:
            host = url.raw_host or ""
            if not url.is_default_port():
                host = f"{host}:{url.port}"
            headers.update(
                sign_headers(
                    self._credentials,
                    host=host,
                    path=url.raw_path,
                    query=url.raw_query_string,
                    body=payload,
                    region=self._region,
                    service=SERVICE,
                )
            )
        elif self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        return UpstreamRequest(str(url), headers, payload)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
