"""The Anthropic client format's translation, without HTTP: requests in, stream events out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from lockgate.clients.anthropic import MessageStreamTranslator, to_canonical, to_message
from lockgate.clients.anthropic.schema import MessagesRequest
from lockgate.errors import BadRequest, UpstreamServerError, anthropic_error
from lockgate.schemas.decode import validate


def canonical(body: dict[str, Any]) -> dict[str, Any]:
    raw = {"model": "m", "max_tokens": 10, **body}
    return to_canonical(validate(raw, MessagesRequest), raw).body


def test_tool_history_thinking_and_url_images() -> None:
    body = canonical(
        {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "s"},
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "t1", "name": "w", "input": {"c": 1}},
                        {"type": "tool_use", "id": "t2", "name": "w", "input": {}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [
                                {"type": "text", "text": "sunny"},
                                {"type": "text", "text": "!"},
                            ],
                        },
                        {"type": "tool_result", "tool_use_id": "t2", "is_error": True},
                        {"type": "image", "source": {"type": "url", "url": "https://i.test/a.png"}},
                    ],
                },
            ],
            "tools": [{"name": "w", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        }
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "w", "arguments": '{"c":1}'}},
            {"id": "t2", "type": "function", "function": {"name": "w", "arguments": "{}"}},
        ],
    }
    assert body["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "sunny!"},
        {"role": "tool", "tool_call_id": "t2", "content": ""},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://i.test/a.png"}}],
        },
    ]
    assert body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert body["tools"] == [
        {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [({"type": "auto"}, "auto"), ({"type": "none"}, "none")],
)
def test_tool_choice(choice: dict[str, Any], expected: str) -> None:
    body = canonical(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "w", "input_schema": {"type": "object"}}],
            "tool_choice": choice,
        }
    )
    assert body["tool_choice"] == expected


def test_server_tools_and_unknown_fields_are_refused_only_when_translated() -> None:
    raw = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    translated = to_canonical(validate(raw, MessagesRequest), raw)
    assert translated.left_out == ("thinking",)
    with pytest.raises(BadRequest) as info:
        translated.check("oai")
    assert info.value.param == "tools[0]"


def events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in data.split(b"\n\n"):
        if block:
            kind, payload = block.split(b"\n")
            out.append((kind.removeprefix(b"event: ").decode(), orjson.loads(payload[6:])))
    return out


def chunk(delta: dict[str, Any] | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": None}]
    body = {"id": "chatcmpl-1", "model": "up", "choices": choices, **extra}
    return b"data: " + orjson.dumps(body) + b"\n\n"


def test_stream_opens_a_block_per_kind_and_tool_call() -> None:
    translator = MessageStreamTranslator("m", "p")
    call = {"index": 0, "id": "c0", "function": {"name": "a", "arguments": ""}}
    data = b"".join(
        [
            chunk({"role": "assistant", "content": "Hi"}),
            chunk({"tool_calls": [call]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "c1", "function": {"name": "b"}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
            chunk(
                usage={
                    "prompt_tokens": 9,
                    "completion_tokens": 4,
                    "prompt_tokens_details": {"cached_tokens": 2},
                }
            ),
            b"data: [DONE]\n\n",
        ]
    )
    seen = events(translator.feed(data))
    assert [kind for kind, _ in seen] == [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert seen[0][1]["message"]["id"] == "msg_chatcmpl-1"
    assert seen[4][1]["content_block"] == {"type": "tool_use", "id": "c0", "name": "a", "input": {}}
    assert seen[8][1] == {
        "type": "content_block_delta",
        "index": 1,  # the late fragment still belongs to the first tool call's block
        "delta": {"type": "input_json_delta", "partial_json": "1}"},
    }
    assert seen[10][1]["delta"]["stop_reason"] == "tool_use"
    assert seen[10][1]["usage"] == {
        "input_tokens": 7, "output_tokens": 4, "cache_read_input_tokens": 2
    }  # fmt: skip
    assert translator.finish() == b""


def test_completion_with_unreadable_tool_arguments_is_a_502() -> None:
    completion = {
        "id": "x",
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [{"id": "c", "function": {"name": "a", "arguments": "[1"}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    with pytest.raises(UpstreamServerError) as info:
        to_message(orjson.dumps(completion), "p")
    status, body = anthropic_error(info.value)
    assert status == 502
    assert orjson.loads(body)["error"]["type"] == "api_error"
