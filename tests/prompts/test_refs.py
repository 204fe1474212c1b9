"""References: their forms, ranges (stable versions only), labels, and sticky canaries."""

from __future__ import annotations

import pytest
import semver

from lockgate.errors import BadRequest, GatewayError
from lockgate.prompts.files import LabelTarget
from lockgate.prompts.refs import (
    PromptNotFound,
    Reference,
    VersionRange,
    canary_bucket,
    choose_version,
    parse_reference,
    pick_canary,
)

VERSIONS = [
    semver.Version.parse(text)
    for text in ("0.1.0", "0.1.5", "0.2.0", "1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0-beta.1")
]


def choose(
    text: str, labels: dict[str, LabelTarget] | None = None, caller: str | None = None
) -> tuple[str, str | None]:
    version, label = choose_version(parse_reference(text), VERSIONS, labels or {}, caller)
    return str(version), label


def test_parse_each_form() -> None:
    assert parse_reference("sentiment") == Reference("sentiment", "sentiment")
    assert parse_reference("sentiment").is_default
    exact = parse_reference("sentiment@1.2.0-rc.1")
    assert exact.version == semver.Version.parse("1.2.0-rc.1")
    assert not exact.is_default
    assert parse_reference("code-review@canary").label == "canary"
    caret = parse_reference("x@^1.2")
    assert caret.range is not None
    assert (str(caret.range.lower), str(caret.range.upper)) == ("1.2.0", "2.0.0")


@pytest.mark.parametrize(
    ("text", "lower", "upper"),
    [
        ("^1", "1.0.0", "2.0.0"),
        ("^1.2", "1.2.0", "2.0.0"),
        ("^1.2.3", "1.2.3", "2.0.0"),
        ("^0", "0.0.0", "1.0.0"),
        ("^0.2", "0.2.0", "0.3.0"),
        ("^0.2.3", "0.2.3", "0.3.0"),
        ("^0.0", "0.0.0", "0.1.0"),
        ("^0.0.3", "0.0.3", "0.0.4"),
        ("~1", "1.0.0", "2.0.0"),
        ("~1.2", "1.2.0", "1.3.0"),
        ("~1.2.3", "1.2.3", "1.3.0"),
        ("~0.2.3", "0.2.3", "0.3.0"),
    ],
)
def test_range_bounds_follow_npm(text: str, lower: str, upper: str) -> None:
    parsed = VersionRange.parse(text)
    assert parsed is not None
    assert (str(parsed.lower), str(parsed.upper)) == (lower, upper)


@pytest.mark.parametrize(
    "text",
    [
        "x@^x",
        "x@",
        "x@^",
        "x@^1.2.3.9.9",
        "x@^01",
        "x@~1.2.3-rc.1",
        "x@1.2",
        "x@1",
        "x@1.0.0+build",
        "x@Canary",
        "x@>=1.0.0",
        "Sentiment",
        "",
        "@1.0.0",
        "a/b@1.0.0",
    ],
)
def test_malformed_references_are_bad_requests(text: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_reference(text)
    assert info.value.status == 400
    assert f"'{text}'" in info.value.message


def test_default_is_the_highest_stable_version() -> None:
    assert choose("p") == ("1.1.0", None)


def test_default_is_the_production_label_when_there_is_one() -> None:
    labels = {"production": LabelTarget(version="0.2.0")}
    assert choose("p", labels) == ("0.2.0", "production")


def test_default_never_picks_a_pre_release() -> None:
    only = [semver.Version.parse("1.0.0-rc.1"), semver.Version.parse("1.0.0-rc.2")]
    with pytest.raises(PromptNotFound) as info:
        choose_version(parse_reference("p"), only, {}, None)
    assert "no stable version" in info.value.message
    assert "1.0.0-rc.1, 1.0.0-rc.2" in info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p@^1", "1.1.0"),
        ("p@^1.1", "1.1.0"),
        ("p@~1.0", "1.0.0"),
        ("p@~1.1.0", "1.1.0"),
        ("p@^0.1", "0.1.5"),
        ("p@^0.1.2", "0.1.5"),
        ("p@^0", "0.2.0"),
        ("p@~0.1", "0.1.5"),
        ("p@^0.2", "0.2.0"),
    ],
)
def test_ranges_pick_the_highest_stable_match(text: str, expected: str) -> None:
    assert choose(text) == (expected, None)


def test_pre_releases_are_picked_only_when_named() -> None:
    assert choose("p@1.2.0-rc.1") == ("1.2.0-rc.1", None)
    with pytest.raises(PromptNotFound) as info:
        choose("p@~1.2")
    assert info.value.message == (
        "Prompt reference 'p@~1.2': no stable version matches ~1.2 (versions: 0.1.0, 0.1.5, "
        "0.2.0, 1.0.0, 1.1.0, 1.2.0-rc.1, 2.0.0-beta.1)"
    )
    with pytest.raises(PromptNotFound):
        choose("p@^2")


def test_unknown_version_and_label_say_what_exists() -> None:
    labels = {"production": LabelTarget(version="1.0.0")}
    with pytest.raises(PromptNotFound) as info:
        choose("p@3.0.0", labels)
    error = info.value
    assert isinstance(error, GatewayError)
    assert (error.status, error.code) == (404, "prompt_not_found")
    assert error.message == (
        "Prompt reference 'p@3.0.0': no version 3.0.0 (versions: 0.1.0, 0.1.5, 0.2.0, 1.0.0, "
        "1.1.0, 1.2.0-rc.1, 2.0.0-beta.1; labels: production)"
    )
    with pytest.raises(PromptNotFound) as info:
        choose("p@canary", labels)
    assert "no label 'canary'" in info.value.message
    assert "labels: production" in info.value.message


def test_a_label_reference_takes_the_label_even_a_pre_release() -> None:
    labels = {"canary": LabelTarget(version="2.0.0-beta.1", weight=10)}
    assert choose("p@canary", labels) == ("2.0.0-beta.1", "canary")


# canaries

LABELS = {
    "production": LabelTarget(version="1.0.0"),
    "canary": LabelTarget(version="1.1.0", weight=10),
}
CALLERS = [f"key-{index}" for index in range(2000)]


def test_the_bucket_is_a_stable_hash_not_pythons() -> None:
    # Fixed values: the same in every process, whatever PYTHONHASHSEED is.
    assert canary_bucket("sentiment", "key-1") == 58
    assert canary_bucket("sentiment", "alice") == 23
    assert all(0 <= canary_bucket("p", caller) < 100 for caller in CALLERS)


def test_canary_takes_about_its_weight_of_callers() -> None:
    chosen = [choose("p", LABELS, caller) for caller in CALLERS]
    canary = sum(1 for item in chosen if item == ("1.1.0", "canary"))
    assert 0.07 * len(CALLERS) <= canary <= 0.13 * len(CALLERS)
    assert {item for item in chosen} == {("1.1.0", "canary"), ("1.0.0", "production")}


def test_canary_is_sticky_per_caller() -> None:
    for caller in CALLERS[:200]:
        first = choose("p", LABELS, caller)
        assert all(choose("p", LABELS, caller) == first for _ in range(3))


def test_canary_depends_on_the_prompt_too() -> None:
    in_p = {c for c in CALLERS if pick_canary("p", LABELS, c)}
    in_q = {c for c in CALLERS if pick_canary("q", LABELS, c)}
    assert in_p != in_q


def test_no_caller_no_canary() -> None:
    assert choose("p", LABELS, None) == ("1.0.0", "production")


def test_canary_applies_only_to_the_default_reference() -> None:
    for caller in CALLERS[:300]:
        assert choose("p@^1", LABELS, caller) == ("1.1.0", None)
        assert choose("p@production", LABELS, caller) == ("1.0.0", "production")
        assert choose("p@1.0.0", LABELS, caller) == ("1.0.0", None)


def test_canary_without_production_falls_back_to_the_highest_stable() -> None:
    labels = {"canary": LabelTarget(version="0.2.0", weight=30)}
    chosen = {choose("p", labels, caller) for caller in CALLERS}
    assert chosen == {("0.2.0", "canary"), ("1.1.0", None)}


def test_several_weighted_labels_take_consecutive_slices() -> None:
    labels = {
        "a": LabelTarget(version="0.1.0", weight=20),
        "b": LabelTarget(version="0.2.0", weight=30),
        "production": LabelTarget(version="1.0.0"),
    }
    for caller in CALLERS[:500]:
        bucket = canary_bucket("p", caller)
        expected = "a" if bucket < 20 else "b" if bucket < 50 else None
        assert pick_canary("p", labels, caller) == expected
    shares = [choose("p", labels, caller)[1] for caller in CALLERS]
    assert 0.17 * 2000 <= shares.count("a") <= 0.23 * 2000
    assert 0.27 * 2000 <= shares.count("b") <= 0.33 * 2000
