"""The provider table of the conformance suite (test_conformance.py): one `Case` per adapter.

Every case is fed the same canonical requests (`REQUEST`, `STREAM_REQUEST`, `PROBE`) and its own
recorded wire payloads; the suite asserts the canonical (OpenAI-shaped) behaviour a client relies
on. Adding a provider is one entry in `CASES`: how to build it (`ProviderConfig` fields), where
its recordings live and what they say, and one function checking its translated request body.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockgate.config.models import ProviderConfig
from lockgate.providers.base import ProviderAdapter
from lockgate.providers.registry import build_adapter
from lockgate.simulate.eventstream import event_message

FIXTURES = Path(__file__).parent / "fixtures"

# -- the shared canonical requests ------------------------------------------------------------

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
SYSTEM = "You are a terse weather assistant."
PARAMETERS = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City and country"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
    "required": ["city", "temperature"],
    "additionalProperties": False,
}
QUESTION = "What is the weather where this photo was taken?"
CALL_TEXT = "Let me check."
ARGUMENTS = {"location": "Paris, France"}
RESULT = {"temperature": 18, "unit": "celsius"}
FOLLOW_UP = "Answer in one sentence."
STOP = ["END"]
REQUEST: dict[str, Any] = {
    "model": "client-alias",
    "messages": [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": QUESTION},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
            ],
        },
        {
            "role": "assistant",
            "content": CALL_TEXT,
            "tool_calls": [
                {
                    "id": "call_abc123",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps(ARGUMENTS)},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc123", "content": json.dumps(RESULT)},
        {"role": "user", "content": FOLLOW_UP},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": PARAMETERS,
            },
        }
    ],
    "stop": STOP,
    "temperature": 0.5,
    "max_tokens": 256,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True},
    },
}
STREAM_REQUEST: dict[str, Any] = {
    **REQUEST,
    "stream": True,
    "stream_options": {"include_usage": True},
}
PROBE = ("logit_bias", {"50256": -100})
"""A parameter some providers cannot honour, with a value that asks for something."""


def request(stream: bool = False) -> dict[str, Any]:
    """A fresh copy of the canonical request (adapters may change the body they are given)."""
    return copy.deepcopy(STREAM_REQUEST if stream else REQUEST)


# -- what a case holds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A recorded non-stream answer and the `chat.completion` facts it must translate to."""

    file: str
    content: str | None
    tool_calls: tuple[tuple[str, dict[str, Any]], ...]
    finish_reason: str
    usage: tuple[int, int, int]  # prompt, completion, total


@dataclass(frozen=True)
class Stream:
    """A recorded stream and what the client must reassemble from it."""

    file: str
    text: str
    tool_calls: tuple[tuple[str, dict[str, Any]], ...]
    finish_reason: str
    usage: tuple[int, int, int]


@dataclass(frozen=True)
class Failure:
    """A recorded error answer and the gateway error it must become."""

    file: str
    status: int
    gateway_status: int
    retryable: bool
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    id: str
    config: Mapping[str, Any]  # ProviderConfig fields, `name` and `type` included
    secret: str  # the credential that must never leak
    model: str  # the upstream model the request is routed to
    url: str
    stream_url: str
    auth: tuple[str, str]  # header name, and the start of its value
    expect_body: Callable[[dict[str, Any], bool], None]  # (translated body, streaming?)
    fixtures: str
    answers: tuple[Answer, ...]
    text_stream: Stream
    tool_stream: Stream
    failures: tuple[Failure, ...]
    honours_probe: bool  # True: PROBE passes through unchanged; False: refused or dropped
    request_drops: bool = False  # the shared request holds something refused unless dropped
    wire: Callable[[Path], bytes] = Path.read_bytes  # a stream recording -> the bytes sent

    def adapter(self, drop_unsupported: bool | None = None) -> ProviderAdapter:
        drop = self.request_drops if drop_unsupported is None else drop_unsupported
        config = ProviderConfig.model_validate({**self.config, "drop_unsupported": drop})
        return build_adapter(config)

    def path(self, file: str) -> Path:
        return FIXTURES / self.fixtures / file


# -- per-provider expectations of the translated canonical request ---------------------------


def expect_openai(body: dict[str, Any], stream: bool) -> None:
    """OpenAI's protocol: the canonical request as it is, only the model re-targeted."""
    model = body.pop("model")
    assert model
    assert body == {k: v for k, v in request(stream).items() if k != "model"}


def expect_anthropic(body: dict[str, Any], stream: bool) -> None:
    json_tool = body["tools"][1]
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "system": SYSTEM,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": QUESTION},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": CALL_TEXT},
                    {
                        "type": "tool_use",
                        "id": "call_abc123",
                        "name": "get_weather",
                        "input": ARGUMENTS,
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_abc123",
                        "content": json.dumps(RESULT),
                    },
                    {"type": "text", "text": FOLLOW_UP},
                ],
            },
        ],
        "temperature": 0.5,
        "stop_sequences": STOP,
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather for a city",
                "input_schema": PARAMETERS,
            },
            {
                "name": "json_response",
                "description": json_tool["description"],
                "input_schema": SCHEMA,
            },
        ],
        # JSON mode next to the client's tools: answer with the JSON tool or call one of them
        "tool_choice": {"type": "any"},
        **({"stream": True} if stream else {}),
    }


def expect_gemini(body: dict[str, Any], stream: bool) -> None:
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_weather"
    assert declaration["description"] == "Current weather for a city"
    assert set(declaration["parameters"]["properties"]) == {"location", "unit"}
    assert declaration["parameters"]["required"] == ["location"]
    assert body == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": QUESTION},
                    {"inlineData": {"mimeType": "image/png", "data": PIXEL}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": CALL_TEXT},
                    {"functionCall": {"name": "get_weather", "args": ARGUMENTS}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": RESULT}},
                    {"text": FOLLOW_UP},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "generationConfig": {
            "temperature": 0.5,
            "maxOutputTokens": 256,
            "stopSequences": STOP,
            "responseMimeType": "application/json",
            "responseJsonSchema": SCHEMA,
        },
        "tools": [{"functionDeclarations": [declaration]}],
    }


def expect_bedrock(body: dict[str, Any], stream: bool) -> None:
    json_tool = body["toolConfig"]["tools"][1]["toolSpec"]
    assert body == {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": QUESTION},
                    {"image": {"format": "png", "source": {"bytes": PIXEL}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"text": CALL_TEXT},
                    {
                        "toolUse": {
                            "toolUseId": "call_abc123",
                            "name": "get_weather",
                            "input": ARGUMENTS,
                        }
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "call_abc123",
                            "content": [{"text": json.dumps(RESULT)}],
                        }
                    },
                    {"text": FOLLOW_UP},
                ],
            },
        ],
        "system": [{"text": SYSTEM}],
        "inferenceConfig": {"maxTokens": 256, "temperature": 0.5, "stopSequences": STOP},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Current weather for a city",
                        "inputSchema": {"json": PARAMETERS},
                    }
                },
                {
                    "toolSpec": {
                        "name": "json_response",
                        "description": json_tool["description"],
                        "inputSchema": {"json": SCHEMA},
                    }
                },
            ],
            "toolChoice": {"any": {}},
        },
    }


def expect_cohere(body: dict[str, Any], stream: bool) -> None:
    # Cohere takes no response_format beside tools: refused (400 unsupported_parameter), or,
    # as this case's request is built, dropped with drop_unsupported.
    assert body == {
        "model": "command-a-03-2025",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": QUESTION},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PIXEL}"},
                    },
                ],
            },
            {
                "role": "assistant",
                "tool_plan": CALL_TEXT,
                "tool_calls": [
                    {
                        "id": "call_abc123",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": json.dumps(ARGUMENTS)},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_abc123", "content": json.dumps(RESULT)},
            {"role": "user", "content": FOLLOW_UP},
        ],
        "max_tokens": 256,
        "temperature": 0.5,
        "stop_sequences": STOP,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": PARAMETERS,
                },
            }
        ],
        **({"stream": True} if stream else {}),
    }


def bedrock_frames(path: Path) -> bytes:
    """ConverseStream recordings are `[event type, payload]` lists; Bedrock sends them framed."""
    events = json.loads(path.read_text(encoding="utf-8"))
    return b"".join(event_message(kind, payload) for kind, payload in events)


# -- the table --------------------------------------------------------------------------------

OPENAI_KEY = "sk-proj-conformance-secret-0123456789"
AZURE_KEY = "azure-conformance-secret-0123456789abcdef"
GROQ_KEY = "gsk_conformance_secret_0123456789"
ANTHROPIC_KEY = "sk-ant-api03-conformance-secret-9f8e7d"
GEMINI_KEY = "AIzaSyD-conformance-secret-0123456789"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYCONFORMANCE"
COHERE_KEY = "cohere-conformance-secret-0123456789abcdef"

_OPENAI_ANSWERS = (
    Answer("chat_text.json", "Hello! How can I assist you today?", (), "stop", (19, 10, 29)),
    Answer(
        "chat_tool_calls.json",
        None,
        (("get_current_weather", {"location": "Boston, MA"}),),
        "tool_calls",
        (82, 17, 99),
    ),
)
_OPENAI_TEXT = Stream(
    "stream_text.sse", "Hello! How can I assist you today?", (), "stop", (19, 10, 29)
)
_OPENAI_TOOLS = Stream(
    "stream_tool_calls.sse",
    "",
    (
        ("get_weather", {"location": "Paris, France"}),
        ("get_weather", {"location": "Bogotá, Colombia"}),
    ),
    "tool_calls",
    (74, 49, 123),
)
_OPENAI_FAILURES = (
    Failure("error_400_invalid_type.json", 400, 400, retryable=False),
    Failure("error_401_invalid_api_key.json", 401, 502, retryable=False),
    Failure("error_429_rate_limit_exceeded.json", 429, 429, retryable=True),
    Failure("error_503_overloaded.json", 503, 502, retryable=True),
)


def _openai_compatible(
    id: str, config: Mapping[str, Any], secret: str, url: str, auth: tuple[str, str], probe: bool
) -> Case:
    """A service speaking OpenAI's protocol: OpenAI's recordings are its wire format."""
    return Case(
        id=id,
        config=config,
        secret=secret,
        model="gpt-4o",
        url=url,
        stream_url=url,
        auth=auth,
        expect_body=expect_openai,
        fixtures="openai",
        answers=_OPENAI_ANSWERS,
        text_stream=_OPENAI_TEXT,
        tool_stream=_OPENAI_TOOLS,
        failures=_OPENAI_FAILURES,
        honours_probe=probe,
    )


_AWS_ERROR = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
_BEDROCK_URL = (
    "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1:0"
)

CASES: tuple[Case, ...] = (
    _openai_compatible(
        "openai",
        {"name": "oai", "type": "openai", "api_key": OPENAI_KEY},
        OPENAI_KEY,
        "https://api.openai.com/v1/chat/completions",
        ("authorization", f"Bearer {OPENAI_KEY}"),
        probe=True,
    ),
    _openai_compatible(
        "azure",
        {
            "name": "az",
            "type": "azure",
            "api_key": AZURE_KEY,
            "base_url": "https://contoso.openai.azure.com",
        },
        AZURE_KEY,
        "https://contoso.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
        "?api-version=2024-10-21",
        ("api-key", AZURE_KEY),
        probe=True,
    ),
    _openai_compatible(
        "groq",
        {"name": "groq", "type": "groq", "api_key": GROQ_KEY},
        GROQ_KEY,
        "https://api.groq.com/openai/v1/chat/completions",
        ("authorization", f"Bearer {GROQ_KEY}"),
        probe=False,  # Groq documents a 400 for logit_bias
    ),
    Case(
        id="anthropic",
        config={"name": "claude", "type": "anthropic", "api_key": ANTHROPIC_KEY},
        secret=ANTHROPIC_KEY,
        model="claude-sonnet-4-5",
        url="https://api.anthropic.com/v1/messages",
        stream_url="https://api.anthropic.com/v1/messages",
        auth=("x-api-key", ANTHROPIC_KEY),
        expect_body=expect_anthropic,
        fixtures="anthropic",
        answers=(
            Answer("message_text.json", "Hi! My name is Claude.", (), "stop", (2095, 503, 2598)),
            Answer(
                "message_tool_use.json",
                "I'll check the current weather in San Francisco for you.",
                (("get_weather", {"location": "San Francisco, CA", "unit": "celsius"}),),
                "tool_calls",
                (2098, 71, 2169),
            ),
        ),
        text_stream=Stream("stream_text.sse", "Hello!", (), "stop", (25, 15, 40)),
        tool_stream=Stream(
            "stream_tool_use.sse",
            "Okay, let's check the weather for San Francisco, CA:",
            (("get_weather", {"location": "San Francisco, CA", "unit": "fahrenheit"}),),
            "tool_calls",
            (472, 89, 561),
        ),
        failures=(
            Failure("error_400_invalid_request_error.json", 400, 400, retryable=False),
            Failure("error_401_authentication_error.json", 401, 502, retryable=False),
            Failure("error_429_rate_limit_error.json", 429, 429, retryable=True),
            Failure("error_529_overloaded_error.json", 529, 503, retryable=True),
        ),
        honours_probe=False,
    ),
    Case(
        id="gemini",
        config={"name": "gem", "type": "gemini", "api_key": GEMINI_KEY},
        secret=GEMINI_KEY,
        model="gemini-2.5-flash",
        url="https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
        stream_url="https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
        ":streamGenerateContent?alt=sse",
        auth=("x-goog-api-key", GEMINI_KEY),
        expect_body=expect_gemini,
        fixtures="gemini",
        answers=(
            Answer(
                "generate_text.json",
                "AI learns patterns from data to make predictions or decisions.\n",
                (),
                "stop",
                (8, 1232, 1240),
            ),
            Answer(
                "generate_function_call.json",
                None,
                (
                    (
                        "schedule_meeting",
                        {
                            "attendees": ["Bob", "Alice"],
                            "date": "2025-03-27",
                            "time": "10:00",
                            "topic": "Q3 planning",
                        },
                    ),
                    ("get_time", {}),
                ),
                "tool_calls",
                (111, 41, 152),
            ),
        ),
        text_stream=Stream(
            "stream_text.sse",
            "Elara found the backpack in her grandmother's attic, dusty and patched, and"
            " whatever she wished for appeared inside.\n",
            (),
            "stop",
            (8, 24, 32),
        ),
        tool_stream=Stream(
            "stream_function_call.sse",
            "I'll check both cities.",
            (("get_weather", {"location": "Paris"}), ("get_weather", {"location": "London"})),
            "tool_calls",
            (52, 88, 140),
        ),
        failures=(
            Failure("error_400_invalid_argument.json", 400, 400, retryable=False),
            Failure("error_400_api_key_invalid.json", 400, 502, retryable=False),
            Failure("error_401_unauthenticated.json", 401, 502, retryable=False),
            Failure("error_429_resource_exhausted.json", 429, 429, retryable=True),
            Failure("error_503_unavailable.json", 503, 502, retryable=True),
        ),
        honours_probe=False,
    ),
    Case(
        id="bedrock",
        config={
            "name": "br",
            "type": "bedrock",
            "aws": {
                "region": "us-east-1",
                "access_key_id": "AKIDEXAMPLE",
                "secret_access_key": AWS_SECRET,
            },
        },
        secret=AWS_SECRET,
        model=_BEDROCK_MODEL,
        url=f"{_BEDROCK_URL}/converse",
        stream_url=f"{_BEDROCK_URL}/converse-stream",
        auth=("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        expect_body=expect_bedrock,
        fixtures="bedrock",
        answers=(
            Answer(
                "converse_text.json", "Hello! How can I help you today?", (), "stop", (20, 10, 30)
            ),
            Answer(
                "converse_tool_use.json",
                "I'll look up the top song on WZPZ.",
                (("top_song", {"sign": "WZPZ"}),),
                "tool_calls",
                (375, 56, 431),
            ),
        ),
        text_stream=Stream(
            "stream_text.json", "Hello! How can I help you today?", (), "stop", (12, 10, 22)
        ),
        tool_stream=Stream(
            "stream_tool_use.json",
            "Let me check.",
            (("top_song", {"sign": "WZPZ"}),),
            "tool_calls",
            (375, 56, 431),
        ),
        failures=(
            Failure(
                "error_400_validation.json",
                400,
                400,
                retryable=False,
                headers={"x-amzn-ErrorType": f"ValidationException{_AWS_ERROR}"},
            ),
            Failure(
                "error_403_access_denied.json",
                403,
                502,
                retryable=False,
                headers={"x-amzn-ErrorType": f"AccessDeniedException{_AWS_ERROR}"},
            ),
            Failure(
                "error_429_throttling.json",
                429,
                429,
                retryable=True,
                headers={"x-amzn-ErrorType": f"ThrottlingException{_AWS_ERROR}"},
            ),
            Failure(
                "error_503_service_unavailable.json",
                503,
                503,
                retryable=True,
                headers={"x-amzn-ErrorType": f"ServiceUnavailableException{_AWS_ERROR}"},
            ),
        ),
        honours_probe=False,
        wire=bedrock_frames,
    ),
    Case(
        id="cohere",
        config={"name": "co", "type": "cohere", "api_key": COHERE_KEY},
        secret=COHERE_KEY,
        model="command-a-03-2025",
        url="https://api.cohere.com/v2/chat",
        stream_url="https://api.cohere.com/v2/chat",
        auth=("authorization", f"Bearer {COHERE_KEY}"),
        expect_body=expect_cohere,
        request_drops=True,
        fixtures="cohere",
        answers=(
            Answer(
                "chat_text.json",
                "Coca-Cola is a carbonated soft drink sold in more than 200 countries.",
                (),
                "stop",
                (186, 93, 279),
            ),
            Answer(
                "chat_tool_call.json",
                None,  # the tool plan is not passed on
                (
                    ("get_weather", {"location": "Madrid"}),
                    ("get_weather", {"location": "Brasilia"}),
                ),
                "tool_calls",
                (913, 83, 996),
            ),
        ),
        text_stream=Stream(
            "stream_text.sse",
            "A large language model (LLM) is a type of neural network.",
            (),
            "stop",
            (69, 12, 81),
        ),
        tool_stream=Stream(
            "stream_tool_calls.sse",
            "",
            (("get_weather", {"location": "Madrid"}), ("get_weather", {"location": "Brasilia"})),
            "tool_calls",
            (913, 83, 996),
        ),
        failures=(
            Failure("error_400_invalid_request.json", 400, 400, retryable=False),
            Failure("error_401_invalid_api_token.json", 401, 502, retryable=False),
            Failure("error_429_too_many_requests.json", 429, 429, retryable=True),
            Failure("error_503_service_unavailable.json", 503, 502, retryable=True),
        ),
        honours_probe=False,  # Cohere's v2 chat has no logit_bias
    ),
)
