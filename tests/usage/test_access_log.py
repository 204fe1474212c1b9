"""The access line: the same fields in both formats, written in batches."""

from __future__ import annotations

import asyncio
import io

import orjson

from lockgate.telemetry.access_log import AccessLog, _text_from_fields, _text_line, access_fields
from lockgate.usage.record import UsageRecord


def served() -> UsageRecord:
    record = UsageRecord("rid", "chat", "caller-id", model="m", provider="p", target_model="t")
    record.input_tokens, record.output_tokens, record.cost_micros = 3, 4, 1_500
    record.key, record.team, record.attempts = "ci-bot", "platform", 1
    record.end()
    return record


def test_the_quick_text_line_says_what_the_fields_say() -> None:
    record = served()
    assert _text_line(record) == _text_from_fields(access_fields(record))
    record.fail(504, "upstream_timeout")
    record.key = None
    assert _text_line(record) == _text_from_fields(access_fields(record))
    assert " chat 504 " in _text_line(record)
    assert "error=upstream_timeout" in _text_line(record)
    assert "key=" not in _text_line(record)


def test_the_quick_text_line_has_every_field_in_the_same_order() -> None:
    record = UsageRecord("rid", "chat", "client-1")
    record.cache_hit = True
    record.subject, record.prompt, record.prompt_version = "project_path:g/p", "review", "1.0.0"
    record.end()
    assert _text_line(record) == _text_from_fields(access_fields(record))
    assert "client_request_id=client-1 cache=hit attempts=0" in _text_line(record)
    assert "subject=project_path:g/p prompt=review request_id=rid" in _text_line(record)


async def test_lines_wait_at_most_a_tenth_of_a_second_and_a_flush_writes_them() -> None:
    stream = io.StringIO()
    log = AccessLog("json", stream=stream)
    log.write(served())
    log.write(served())
    assert stream.getvalue() == ""
    await asyncio.sleep(0.15)
    lines = stream.getvalue().splitlines()
    assert [orjson.loads(line)["request_id"] for line in lines] == ["rid", "rid"]
    log.write(served())
    log.flush()
    assert len(stream.getvalue().splitlines()) == 3
