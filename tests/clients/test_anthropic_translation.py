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


def translate(messages: list[dict[str, Any]]) -> Any:
    raw = {"model": "m", "max_tokens": 10, "messages": messages}
    return to_canonical(validate(raw, MessagesRequest), raw)


@pytest.mark.parametrize(
    ("messages", "param", "what"),
    [
        (
            [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "t", "signature": "s"},
                        {"type": "mcp_tool_use", "id": "m", "name": "n", "server_name": "s"},
                    ],
                },
            ],
            "messages[1].content[1]",
            "a 'mcp_tool_use' block",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [
                                {"type": "text", "text": "found:"},
                                {"type": "search_result", "source": "s", "title": "t"},
                            ],
                        }
                    ],
                }
            ],
            "messages[0].content[0].content[1]",
            "a 'search_result' block",
        ),
        (
            [{"role": "user", "content": [{"type": "container_upload", "file_id": "f"}]}],
            "messages[0].content[0]",
            "a 'container_upload' block",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Summarise"},
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                        },
                    ],
                }
            ],
            "messages[0].content[1].source",
            "a document source of type 'text'",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {"type": "url", "url": "https://d.test/a.pdf"},
                        }
                    ],
                }
            ],
            "messages[0].content[0].source",
            "a document source of type 'url'",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {
                                "type": "base64",
                                "media_type": "text/plain",
                                "data": "eA==",
                            },
                        }
                    ],
                }
            ],
            "messages[0].content[0].source",
            "a base64 document of type 'text/plain'",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ],
            "messages[0].content[0].source",
            "an image source of type 'file'",
        ),
    ],
    ids=[
        "mcp_tool_use",
        "search_result",
        "container_upload",
        "text_doc",
        "url_doc",
        "txt_b64_doc",
        "file_image",
    ],
)
def test_untranslatable_blocks_are_refused_only_when_translated(
    messages: list[dict[str, Any]], param: str, what: str
) -> None:
    translated = translate(messages)
    assert translated.unsupported == (param,)
    assert translated.body["messages"]  # routing still has a request to look at
    with pytest.raises(BadRequest) as info:
        translated.check("oai")
    assert info.value.param == param
    assert info.value.code == "unsupported_parameter"
    assert info.value.message.startswith(f"'{param}' ({what}) needs an Anthropic provider")


def test_thinking_blocks_are_left_out_silently() -> None:
    translated = translate(
        [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "redacted_thinking", "data": "d"},
                    {"type": "text", "text": "a"},
                ],
            },
        ]
    )
    assert translated.unsupported == ()
    assert translated.body["messages"][1] == {"role": "assistant", "content": "a"}
    translated.check("oai")


@pytest.mark.parametrize(
    ("block", "param"),
    [
        ({"type": "tool_use", "id": "t", "name": "n", "input": []}, "messages[0].content[0].input"),
        ({"type": "image", "source": {"type": "url"}}, "messages[0].content[0].source.url"),
        ({"type": "image", "source": {"type": 3}}, "messages[0].content[0].source.type"),
        ({"type": "document", "source": "x"}, "messages[0].content[0].source"),
        ({"type": 7}, "messages[0].content[0].type"),
    ],
)
def test_known_blocks_are_validated(block: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        translate([{"role": "user", "content": [block]}])
    assert info.value.param == param


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
