"""One conformance suite run against every adapter (STYLE habit 9), fed by recorded wire payloads.

The same tests run for every entry of `conformance_cases.CASES`: one canonical request set is
translated, and each provider's recorded answers, streams and errors must come back as what an
OpenAI client relies on, checked with the official `openai` SDK's own types. Adapters are pure
translation, so nothing is mocked and nothing leaves the process.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from lockgate.errors import GatewayError, UnsupportedParameter, openai_error_body
from lockgate.providers.base import ProviderAdapter, StreamParser
from tests.providers.conformance_cases import (
    CASES,
    PROBE,
    Answer,
    Case,
    Failure,
    Stream,
    request,
)

DONE = b"data: [DONE]\n\n"


def _params(kind: str) -> Iterator[Any]:
    for case in CASES:
        if kind == "case":
            yield pytest.param(case, id=case.id)
        elif kind == "answer":
            for answer in case.answers:
                yield pytest.param(case, answer, id=f"{case.id}-{answer.file}")
        elif kind == "stream":
            for stream in (case.text_stream, case.tool_stream):
                yield pytest.param(case, stream, id=f"{case.id}-{stream.file}")
        else:
            for failure in case.failures:
                yield pytest.param(case, failure, id=f"{case.id}-{failure.file}")


def _body(upstream_body: bytes) -> dict[str, Any]:
    value = json.loads(upstream_body)
    assert isinstance(value, dict)
    return value


# -- requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("case", _params("case"))
def test_canonical_request_translates(case: Case, stream: bool) -> None:
    upstream = case.adapter().chat_request(request(stream), case.model)
    assert upstream.url == (case.stream_url if stream else case.url)
    header, value = case.auth
    assert upstream.headers[header].startswith(value)
    assert upstream.headers["content-type"] == "application/json"
    assert case.secret not in upstream.url
    case.expect_body(_body(upstream.body), stream)


# -- non-stream answers -----------------------------------------------------------------------


def _calls(tool_calls: Any) -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((call.function.name, json.loads(call.function.arguments)) for call in tool_calls)


@pytest.mark.parametrize(("case", "answer"), _params("answer"))
def test_recorded_answer_is_a_chat_completion(case: Case, answer: Answer) -> None:
    adapter = case.adapter()
    sent = request()
    adapter.chat_request(sent, case.model)
    produced = adapter.chat_response(case.path(answer.file).read_bytes(), sent)
    completion = ChatCompletion.model_validate(json.loads(produced))

    assert completion.object == "chat.completion"
    assert completion.id
    assert completion.model
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == answer.content
    assert _calls(choice.message.tool_calls or ()) == answer.tool_calls
    ids = [call.id for call in choice.message.tool_calls or ()]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    assert choice.finish_reason == answer.finish_reason
    assert (choice.finish_reason == "tool_calls") == bool(answer.tool_calls)
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == answer.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


# -- streams ----------------------------------------------------------------------------------


def _splittings(size: int, seed: str) -> dict[str, list[int]]:
    """Piece sizes: the whole recording, byte by byte, and three seeded random cuttings."""
    result = {"whole": [size], "bytes": [1] * size}
    for k in range(3):
        rng = random.Random(f"{seed}-{k}")
        sizes: list[int] = []
        while sum(sizes) < size:
            sizes.append(rng.randint(1, 97))
        result[f"random-{k}"] = sizes
    return result


def _feed(parser: StreamParser, data: bytes, sizes: list[int]) -> list[bytes]:
    """The canonical events produced, one per item, checking each read gives whole events."""
    events: list[bytes] = []
    start = 0
    for size in sizes:
        for item in parser.feed(data[start : start + size]):
            assert item.startswith(b"data: ")
            assert item.endswith(b"\n\n")
            events += [event + b"\n\n" for event in item[:-2].split(b"\n\n")]
        start += size
    return events


def _parser(case: Case, adapter: ProviderAdapter) -> StreamParser:
    sent = request(stream=True)
    adapter.chat_request(sent, case.model)
    return adapter.stream_parser(sent)


def _normalised(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chunks with generated values (`id`, `created`, tool call ids) replaced by ordinals,
    after checking `id`, `created` and `model` are the same on every chunk."""
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert len({chunk["created"] for chunk in chunks}) == 1
    assert len({chunk["model"] for chunk in chunks}) == 1
    call_ids: dict[str, str] = {}
    result = []
    for chunk in chunks:
        chunk = {**chunk, "id": "<id>", "created": 0}
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or ():
                if call.get("id") is not None:
                    call["id"] = call_ids.setdefault(call["id"], f"<call {len(call_ids)}>")
        result.append(chunk)
    return result


def _reassembled(chunks: list[ChatCompletionChunk]) -> tuple[str, tuple[Any, ...], str]:
    """(text, tool calls, finish reason) as a client accumulates them, by the SDK's own code."""
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(chunk)
    completion = state.get_final_completion()
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    finish = choice.finish_reason
    return choice.message.content or "", _calls(choice.message.tool_calls or ()), finish


@pytest.mark.parametrize(("case", "stream"), _params("stream"))
def test_recorded_stream_translates_the_same_however_it_is_cut(case: Case, stream: Stream) -> None:
    adapter = case.adapter()
    data = case.wire(case.path(stream.file))
    outcomes = {}
    for name, sizes in _splittings(len(data), f"{case.id}-{stream.file}").items():
        parser = _parser(case, adapter)
        events = _feed(parser, data, sizes)
        assert parser.complete, name
        assert parser.failure is None, name
        assert events[-1] == DONE, name
        assert events.count(DONE) == 1, name
        outcomes[name] = [json.loads(event[6:]) for event in events[:-1]]

    reference = _normalised(outcomes.pop("whole"))
    for name, chunks in outcomes.items():
        assert _normalised(chunks) == reference, name

    chunks = [ChatCompletionChunk.model_validate(chunk) for chunk in reference]
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    *answer, last = chunks
    # include_usage: usage rides on a last chunk without choices, null on every other chunk
    assert last.choices == []
    assert last.usage is not None
    usage = last.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == stream.usage
    assert all(chunk.usage is None for chunk in answer)
    assert [c.choices[0].finish_reason for c in answer if c.choices[0].finish_reason] == [
        stream.finish_reason
    ]
    text, tool_calls, finish = _reassembled(chunks)
    assert text == stream.text
    assert tool_calls == stream.tool_calls
    assert finish == stream.finish_reason


@pytest.mark.parametrize(("case", "stream"), _params("stream"))
def test_truncated_stream_is_never_complete(case: Case, stream: Stream) -> None:
    adapter = case.adapter()
    data = case.wire(case.path(stream.file))
    parser = _parser(case, adapter)
    events = _feed(parser, data, [len(data) // 2])
    assert not parser.complete
    assert DONE not in events

    # Fed byte by byte, the stream is complete only once its last meaningful byte has arrived.
    end = len(data.rstrip())
    parser = _parser(case, adapter)
    for at in range(len(data)):
        events = _feed(parser, data[at : at + 1], [1])
        if at + 1 < end:
            assert not parser.complete, at
            assert DONE not in events, at
    assert parser.complete


# -- errors -----------------------------------------------------------------------------------

_MESSAGE = re.compile(rb'("message"\s*:\s*")((?:[^"\\]|\\.)*)"')


@pytest.mark.parametrize(("case", "failure"), _params("failure"))
def test_recorded_error_maps_to_its_status_without_the_credential(
    case: Case, failure: Failure
) -> None:
    recorded = case.path(failure.file).read_bytes()
    found = _MESSAGE.search(recorded)
    assert found is not None
    message = json.loads(b'"' + found.group(2) + b'"')
    # The provider's message quotes the credential, as some do when refusing it.
    leaky = _MESSAGE.sub(
        lambda m: m.group(1) + f"key {case.secret} refused; ".encode() + m.group(2) + b'"',
        recorded,
        count=1,
    )
    assert case.secret.encode() in leaky
    for body in (recorded, leaky):
        error = case.adapter().error(failure.status, failure.headers, body)
        assert isinstance(error, GatewayError)
        assert error.status == failure.gateway_status
        assert error.retryable is failure.retryable
        assert message in error.message
        shown = [
            error.message,
            str(error),
            openai_error_body(error).decode(),
            *error.headers.values(),
        ]
        assert not [text for text in shown if case.secret in text]


# -- unsupported parameters -------------------------------------------------------------------


@pytest.mark.parametrize("case", _params("case"))
def test_parameter_it_cannot_honour_is_refused_or_dropped(case: Case) -> None:
    name, value = PROBE
    sent = {**request(), name: value}
    if case.honours_probe:
        for drop in (False, True):
            body = _body(case.adapter(drop).chat_request(dict(sent), case.model).body)
            assert body.pop(name) == value
            case.expect_body(body, False)
        return
    with pytest.raises(UnsupportedParameter) as refused:
        case.adapter(drop_unsupported=False).chat_request(dict(sent), case.model)
    assert refused.value.status == 400
    assert refused.value.param == name
    assert f"'{case.config['name']}'" in refused.value.message
    assert case.secret not in refused.value.message
    body = _body(case.adapter(drop_unsupported=True).chat_request(dict(sent), case.model).body)
    assert name not in json.dumps(body)
    case.expect_body(body, False)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
@pytest.mark.parametrize("status", [408, 409])
def test_timeout_and_conflict_answers_are_retryable(case: Case, status: int) -> None:
    error = case.adapter().error(status, {}, b'{"error": {"message": "try again"}}')
    assert error.retryable
    assert error.status == status
