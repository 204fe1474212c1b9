"""SSE framing: event boundaries survive any split of the byte stream."""

from __future__ import annotations

import pytest

from lockgate.providers.openai import OpenAIStreamParser
from lockgate.transport.sse import EventSplitter, data_of

STREAM = b'data: {"a":1}\r\n\r\n: keep-alive\r\n\r\ndata: line one\r\ndata: line two\r\n\r\ndata: [DONE]\r\n\r\n'


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, len(STREAM)])
def test_crlf_events_split_anywhere(size: int) -> None:
    splitter = EventSplitter()
    events = []
    for start in range(0, len(STREAM), size):
        events += splitter.feed(STREAM[start : start + size])
    assert [data_of(event) for event in events] == [
        b'{"a":1}',
        None,
        b"line one\nline two",
        b"[DONE]",
    ]
    assert splitter.pending == b""


def _openai_parser() -> OpenAIStreamParser:
    return OpenAIStreamParser("p", lambda text: text.replace("sk-secret", "***"))


CHUNK = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'


@pytest.mark.parametrize("size", [1, 4, 9, 64, 10_000])
def test_openai_stream_is_relayed_whole_and_complete_at_done(size: int) -> None:
    stream = CHUNK * 3 + b": keep-alive\n\n" + CHUNK + b"data: [DONE]\n\n"
    parser = _openai_parser()
    relayed = b""
    for start in range(0, len(stream), size):
        relayed += b"".join(parser.feed(stream[start : start + size]))
        assert parser.complete == (start + size >= len(stream))
    assert relayed.replace(b": keep-alive\n\n", b"") == CHUNK * 4 + b"data: [DONE]\n\n"
    assert parser.failure is None


@pytest.mark.parametrize("size", [1, 7, 10_000])
def test_openai_in_band_error_keeps_what_came_before(size: int) -> None:
    error = b'data: {"error": {"message": "boom sk-secret", "type": "server_error"}}\n\n'
    stream = CHUNK * 2 + error + CHUNK
    parser = _openai_parser()
    relayed = b""
    for start in range(0, len(stream), size):
        relayed += b"".join(parser.feed(stream[start : start + size]))
        if parser.failure:
            break
    assert relayed == CHUNK * 2
    assert parser.failure is not None
    assert "boom ***" in parser.failure.message
    assert not parser.complete


def test_done_inside_content_does_not_complete_the_stream() -> None:
    parser = _openai_parser()
    content = b'data: {"choices":[{"delta":{"content":"say [DONE] now"}}]}\n\n'
    assert parser.feed(content) == [content]
    assert not parser.complete


def test_an_event_that_never_ends_is_cut() -> None:
    from lockgate.errors import UpstreamServerError
    from lockgate.transport.sse import MAX_EVENT_BYTES

    splitter = EventSplitter()
    splitter.feed(b"data: " + b"x" * (MAX_EVENT_BYTES // 2))
    with pytest.raises(UpstreamServerError, match="larger than"):
        splitter.feed(b"x" * MAX_EVENT_BYTES)
    parser = _openai_parser()
    with pytest.raises(UpstreamServerError, match="larger than"):
        parser.feed(b"data: " + b"x" * (MAX_EVENT_BYTES + 1))
