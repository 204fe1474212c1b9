"""Request facts used by routing rules."""

from __future__ import annotations

from lockgate.routing.facts import MAX_TAGS, parse_tags


def test_tags_are_parsed_and_bounded() -> None:
    assert parse_tags(b"team=search, env = prod,broken,=x") == {"team": "search", "env": "prod"}
    assert parse_tags(None) == {}
    many = ",".join(f"k{i}=v" for i in range(100)).encode()
    assert len(parse_tags(many)) == MAX_TAGS
    long_value = b"k=" + b"v" * 1000
    assert parse_tags(long_value) == {}
