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


def test_health_records_stay_bounded_under_client_chosen_names() -> None:
    from lockgate.config.models import CooldownConfig
    from lockgate.routing.health import MAX_TRACKED_TARGETS, HealthBook

    book = HealthBook(CooldownConfig(after_failures=1, for_s=60))
    book.start("sick/one")
    book.failed("sick/one")  # cooling down: must be remembered
    for index in range(MAX_TRACKED_TARGETS * 2):
        label = f"glob/model-{index}"
        book.start(label)
        book.succeeded(label, 0.01)
    assert len(book.snapshot()) <= MAX_TRACKED_TARGETS
    assert book.snapshot()["sick/one"]["state"] == "cooling_down"
