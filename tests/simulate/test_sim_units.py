"""Pure functions: directive parsing, schema examples, reply text."""

from __future__ import annotations

import pytest

from lockgate.simulate.directives import (
    NO_DIRECTIVES,
    DirectiveError,
    Directives,
    collect_directives,
    split_model,
)
from lockgate.simulate.schema_example import example_object
from lockgate.simulate.text import cut_at_stop, pieces_of, reply_text


def test_split_model() -> None:
    assert split_model("sim-small") == ("sim-small", None)
    assert split_model("sim-small?status=500&retry_after=2") == (
        "sim-small",
        "status=500&retry_after=2",
    )


def test_sources_merge_later_wins() -> None:
    directives = collect_directives(
        "status=500&tokens=3",
        {"status": 502, "content": "hi there", "hang": False},
        "status=503; retry_after=1.5",
    )
    assert directives == Directives(
        status=503, tokens=3, content="hi there", retry_after=1.5, hang=False
    )


def test_no_sources_is_the_shared_empty_value() -> None:
    assert collect_directives(None, None, None) is NO_DIRECTIVES


def test_values_are_percent_decoded_and_typed() -> None:
    directives = collect_directives("content=a%26b%20c&tool_call=lookup&reset=true", None, None)
    assert directives.content == "a&b c"
    assert directives.tool_call == "lookup"
    assert directives.reset is True
    assert collect_directives(None, {"tool_call": 1}, None).tool_call is True
    assert collect_directives(None, None, "fail_times=2;key=7").key == "7"


@pytest.mark.parametrize(
    ("suffix", "body", "header", "key"),
    [
        ("stauts=500", None, None, "stauts"),
        ("latency_ms=-5", None, None, "latency_ms"),
        ("tokens=1.5", None, None, "tokens"),
        (None, {"hang": "sometimes"}, None, "hang"),
        (None, {"status": True}, None, "status"),
        (None, {"content": ["x"]}, None, "content"),
        (None, None, "novalue", "novalue"),
        (None, "status=500", None, None),
    ],
)
def test_bad_directives(
    suffix: str | None, body: object, header: str | None, key: str | None
) -> None:
    with pytest.raises(DirectiveError) as caught:
        collect_directives(suffix, body, header)
    assert caught.value.key == key
    if key is not None:
        assert f"'{key}'" in str(caught.value)


def test_schema_example_required_only() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer"},
            "ratio": {"type": "number"},
            "ok": {"type": "boolean"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "maybe": {"type": ["null", "string"]},
            "ref": {"$ref": "#/$defs/Point"},
            "optional": {"type": "string"},
        },
        "required": ["name", "count", "ratio", "ok", "unit", "maybe", "ref"],
        "$defs": {
            "Point": {
                "type": "object",
                "properties": {"x": {"type": "number"}},
                "required": ["x"],
            }
        },
    }
    assert example_object(schema, required_only=True) == {
        "name": "example",
        "count": 1,
        "ratio": 1,
        "ok": True,
        "unit": "c",
        "maybe": "example",
        "ref": {"x": 1},
    }
    assert example_object(schema, required_only=False)["optional"] == "example"
    assert example_object(None, required_only=True) == {}
    assert example_object({"type": "string"}, required_only=True) == {}


def test_reply_text_and_pieces() -> None:
    text = reply_text("  Tell me\na story  ", 8)
    assert text == "Simulated reply to: Tell me a story lorem"
    assert reply_text("x", 2) == "Simulated reply"
    assert reply_text("x", 0) == ""
    assert pieces_of(text) == (
        "Simulated",
        " reply",
        " to:",
        " Tell",
        " me",
        " a",
        " story",
        " lorem",
    )
    assert pieces_of("") == ()
    assert "".join(pieces_of(" a  b ")) == " a  b "


def test_cut_at_stop_uses_earliest_match() -> None:
    assert cut_at_stop("one two three", ["three", "two"]) == ("one ", True)
    assert cut_at_stop("one two", ["zzz"]) == ("one two", False)
