"""The OpenAI wire protocol, spoken by OpenAI and every OpenAI-compatible server, and Azure OpenAI.

Requests and responses are already canonical, so the adapter only re-targets the model, passes
bytes through, and maps errors. A catalogue service (`catalogue.py`) may add quirks: parameters it
cannot honour and parameters it names differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import msgspec

from lockgate.errors import GatewayError, UpstreamClientError, UpstreamServerError
from lockgate.providers.base import UpstreamRequest
from lockgate.providers.params import reject_or_drop
from lockgate.transport.sse import MAX_EVENT_BYTES, EventSplitter, data_of, event_too_large

__all__ = ["AzureOpenAIAdapter", "OpenAIAdapter", "OpenAIStreamParser"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_DONE = b"[DONE]"
_NO_OP: Mapping[str, Callable[[object], bool]] = MappingProxyType(
    {
        "n": lambda value: value == 1,
        "logprobs": lambda value: value is False,
        "top_logprobs": lambda value: value == 0,
        "logit_bias": lambda value: value == {},
        "tool_choice": lambda value: value == "auto",
        "parallel_tool_calls": lambda value: value is True,
    }
)
"""Values of parameters a catalogue service may not know that ask for nothing beyond the default."""


class OpenAIStreamParser:
    """Passes OpenAI SSE events through unchanged, noting `[DONE]` and in-band errors.

    The common case costs two substring scans per read, not work per event: complete events are
    relayed as one block. Only a read that may hold an error event, or CR line endings, is split
    into events.
    """

    __slots__ = ("_by_event", "_pending", "_provider", "_scrub", "_splitter", "complete", "failure")

    def __init__(self, provider: str, scrub: Callable[[str], str]) -> None:
        self._provider = provider
        self._scrub = scrub
        self._splitter = EventSplitter()
        self._pending = b""
        self._by_event = False
        self.complete = False
        self.failure: GatewayError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._pending + data if self._pending else data
        if self._by_event or b'"error"' in buffer or b"\r" in buffer:
            self._by_event = True  # for good: the splitter now holds any partial event
            self._pending = b""
            return self._feed_events(buffer)
        end = buffer.rfind(b"\n\n") + 2
        if end < 2:
            if len(buffer) > MAX_EVENT_BYTES:
                raise event_too_large()
            self._pending = buffer
            return []
        block, self._pending = buffer[:end], buffer[end:]
        if (
            (
                block.endswith(b"[DONE]\n\n")  # the usual place: last, found without a scan
                and data_of(block[:-2].rpartition(b"\n\n")[2]) == _DONE
            )
            or (
                b"[DONE]" in block
                and any(data_of(event) == _DONE for event in block.split(b"\n\n"))
            )
        ):
            self.complete = True
        return [block]

    def _feed_events(self, data: bytes) -> list[bytes]:
        events = []
        for event in self._splitter.feed(data):
            payload = data_of(event)
            if payload == _DONE:
                self.complete = True
            elif payload is None:
                continue  # comments and keep-alives carry nothing for the client
            elif b'"error"' in payload[:16]:
                self.failure = self._in_band_error(payload)
                break
            events.append(event + b"\n\n")
        return events

    def _in_band_error(self, payload: bytes) -> GatewayError:
        message = _error_fields(payload)[0]
        return UpstreamServerError(
            f"Provider '{self._provider}' reported an error mid-stream: "
            + (self._scrub(message) or "no message")
        )


class OpenAIAdapter:
    """`POST {base_url}/chat/completions` and `/embeddings` with a bearer key."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        extra_headers: Mapping[str, str] | None = None,
        *,
        unsupported: Sequence[str] = (),
        renames: Mapping[str, str] | None = None,
        drop_unsupported: bool = False,
    ) -> None:
        self.name = name
        self._base_url = base_url
        self._secret = api_key
        self._unsupported = tuple(unsupported)
        self._renames = tuple((renames or {}).items())
        self._drop = drop_unsupported
        self._quirks = bool(self._unsupported or self._renames)
        headers = {"content-type": "application/json", **self._auth_headers(api_key)}
        headers.update(extra_headers or {})
        self._headers = headers
        self._chat_url = f"{base_url}/chat/completions"
        self._embeddings_url = f"{base_url}/embeddings"

    @staticmethod
    def _auth_headers(api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def _url(self, operation: str, model: str) -> str:
        return self._chat_url if operation == "chat" else self._embeddings_url

    def chat_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        if self._quirks:  # a catalogue service's documented limits; plain `openai` has none
            self._apply_quirks(body)
        body["model"] = model
        return UpstreamRequest(self._url("chat", model), self._headers, _encode(body))

    def _apply_quirks(self, body: dict[str, Any]) -> None:
        """Refuse (or drop) what the service cannot honour, then rename what it names otherwise.

        A parameter holding its no-op value (`n: 1`, `logprobs: false`, ...) asks for nothing: it
        is removed silently, since some services refuse even that.
        """
        present = [name for name in self._unsupported if name in body]
        for name in present:
            no_op = _NO_OP.get(name)
            if no_op is not None and no_op(body[name]):
                del body[name]
        if present:
            reject_or_drop(body, self._unsupported, self.name, self._drop)
        for old, new in self._renames:
            if old in body:
                value = body.pop(old)
                if value is not None:
                    body[new] = value

    def embeddings_request(self, body: dict[str, Any], model: str) -> UpstreamRequest:
        body["model"] = model
        return UpstreamRequest(self._url("embeddings", model), self._headers, _encode(body))

    def chat_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        return body

    def embeddings_response(self, body: bytes, request: dict[str, Any]) -> bytes:
        return body

    def stream_parser(self, body: dict[str, Any]) -> OpenAIStreamParser:
        return OpenAIStreamParser(self.name, self._scrub)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        """Map an upstream error answer; the message is kept, any credential in it is not."""
        message, kind, code, param = _error_fields(body)
        message = self._scrub(message) or f"HTTP {status}"
        error: GatewayError
        if status in (401, 403):
            # The caller's credentials are fine; the gateway's own are not. Passing 401 on would
            # make the client believe its gateway key is wrong.
            error = UpstreamServerError(
                f"Provider '{self.name}' rejected the gateway's credentials "
                f"(HTTP {status}): {message}",
                code="upstream_auth_failed",
            )
            error.retryable = False
        elif status == 429:
            retry_after = headers.get("retry-after")
            error = UpstreamClientError(
                message,
                status=429,
                code="upstream_rate_limited",
                headers={"retry-after": retry_after} if retry_after else None,
            )
            error.type = "rate_limit_error"
            error.retryable = True
        elif 400 <= status < 500:
            error = UpstreamClientError(message, status=status, code=code, param=param)
            error.type = kind or "invalid_request_error"
            error.retryable = status in RETRYABLE_STATUSES  # 408 and 409 are worth a retry
        else:
            error = UpstreamServerError(f"Provider '{self.name}' failed (HTTP {status}): {message}")
            error.retryable = status in RETRYABLE_STATUSES
        return error

    def _scrub(self, text: str) -> str:
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text


class AzureOpenAIAdapter(OpenAIAdapter):
    """Azure OpenAI: the model is a deployment in the path, the key goes in `api-key`."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        api_version: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._api_version = api_version
        super().__init__(name, base_url, api_key, extra_headers)

    @staticmethod
    def _auth_headers(api_key: str | None) -> dict[str, str]:
        return {"api-key": api_key} if api_key else {}

    def _url(self, operation: str, model: str) -> str:
        path = "chat/completions" if operation == "chat" else "embeddings"
        deployment = quote(model, safe="")  # a glob fills it with client text: never a path
        query = f"api-version={self._api_version}"
        return f"{self._base_url}/openai/deployments/{deployment}/{path}?{query}"


def _error_fields(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    """message, type, code, param from an OpenAI-style error body (tolerating other shapes)."""
    try:
        value = _decode(body)
    except msgspec.DecodeError:
        return body[:500].decode("utf-8", "replace").strip(), None, None, None
    error = value.get("error", value) if isinstance(value, dict) else value
    if isinstance(error, str):
        return error, None, None, None
    if not isinstance(error, dict):
        return str(error)[:500], None, None, None
    message = error.get("message") or error.get("detail") or ""
    code = error.get("code")
    return (
        str(message),
        _optional_str(error.get("type")),
        None if code is None else str(code),
        _optional_str(error.get("param")),
    )


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
