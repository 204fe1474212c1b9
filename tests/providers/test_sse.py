"""SSE framing: event boundaries survive any split of the byte stream."""

from __future__ import annotations

import pytest

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
