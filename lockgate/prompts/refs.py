"""Prompt references (`name`, `name@1.2.0`, `name@^1`, `name@~1.2`, `name@canary`) and the choice
of a version for one.

Ranges follow npm: a caret keeps the left-most non-zero part (`^1.2` is >=1.2.0 <2.0.0, `^0.2` is
>=0.2.0 <0.3.0), a tilde keeps major.minor (`~1.2.3` is >=1.2.3 <1.3.0). A range, and the default
reference, only ever pick a stable version: a pre-release is chosen by naming it exactly or
through a label.

The default reference takes the `production` label, else the highest stable version; weighted
labels (canaries) take a share of its calls. The share is decided by a stable hash of the prompt
name and the caller, so one caller always gets the same variant and results compare per variant.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import semver

from lockgate.errors import BadRequest, GatewayError
from lockgate.prompts.files import LABEL_NAME, PRODUCTION, PROMPT_NAME, LabelTarget

__all__ = [
    "PromptNotFound",
    "Reference",
    "VersionRange",
    "canary_bucket",
    "choose_version",
    "parse_reference",
    "pick_canary",
]

_RANGE = re.compile(r"([\^~])(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?")
_FORMS = "name, name@1.2.3, name@^1.2, name@~1.2 or name@label"


class PromptNotFound(GatewayError):
    """A reference names a prompt, version or label that does not exist, or a range matches none."""

    status = 404
    type = "invalid_request_error"
    code = "prompt_not_found"


@dataclass(frozen=True)
class VersionRange:
    """`^1.2` or `~1.2.3`: stable versions from `lower` (inclusive) to `upper` (exclusive)."""

    text: str
    lower: semver.Version
    upper: semver.Version

    def matches(self, version: semver.Version) -> bool:
        return not version.prerelease and self.lower <= version < self.upper

    @classmethod
    def parse(cls, text: str) -> VersionRange | None:
        match = _RANGE.fullmatch(text)
        if match is None:
            return None
        operator = match.group(1)
        given = [int(part) for part in match.groups()[1:] if part is not None]
        major, minor, patch = (*given, 0, 0)[:3]
        lower = semver.Version(major, minor, patch)
        if operator == "~" and len(given) > 1:
            upper = semver.Version(major, minor + 1, 0)
        elif major > 0 or len(given) == 1:
            upper = semver.Version(major + 1, 0, 0)
        elif minor > 0 or len(given) == 2:
            upper = semver.Version(0, minor + 1, 0)
        else:
            upper = semver.Version(0, 0, patch + 1)
        return cls(text, lower, upper)


@dataclass(frozen=True)
class Reference:
    """A parsed reference; at most one of `version`, `range`, `label` is set (none: default)."""

    text: str
    name: str
    version: semver.Version | None = None
    range: VersionRange | None = None
    label: str | None = None

    @property
    def is_default(self) -> bool:
        return self.version is None and self.range is None and self.label is None


def parse_reference(text: str) -> Reference:
    """Parse `name[@selector]`; raises `BadRequest` naming the reference when it is malformed."""
    name, at, selector = text.partition("@")
    if not PROMPT_NAME.fullmatch(name):
        raise _bad(text, "a prompt name is lowercase letters, digits, '-' and '_'")
    if not at:
        return Reference(text, name)
    if selector[:1] in ("^", "~"):
        version_range = VersionRange.parse(selector)
        if version_range is None:
            raise _bad(text, "a range is ^ or ~ and 1 to 3 numbers, e.g. ^1, ^1.2, ~1.2.3")
        return Reference(text, name, range=version_range)
    if selector[:1].isdigit():
        if not semver.Version.is_valid(selector):
            raise _bad(text, "an exact version is a full semantic version, e.g. 1.2.0")
        version = semver.Version.parse(selector)
        if version.build:
            raise _bad(text, "build metadata (+...) is not part of a prompt version")
        return Reference(text, name, version=version)
    if LABEL_NAME.fullmatch(selector):
        return Reference(text, name, label=selector)
    raise _bad(text, f"expected {_FORMS}")


def choose_version(
    reference: Reference,
    versions: Sequence[semver.Version],
    labels: Mapping[str, LabelTarget],
    caller: str | None = None,
) -> tuple[semver.Version, str | None]:
    """The version a reference picks, and the label it came through (if any).

    `versions` are those of the prompt the reference names; raises `PromptNotFound` saying what
    exists when nothing matches.
    """
    if reference.label is not None:
        target = labels.get(reference.label)
        if target is None:
            raise _not_found(reference, f"no label {reference.label!r}", versions, labels)
        return semver.Version.parse(target.version), reference.label
    if reference.version is not None:
        if reference.version not in versions:
            raise _not_found(reference, f"no version {reference.version}", versions, labels)
        return reference.version, None
    if reference.range is not None:
        matching = [v for v in versions if reference.range.matches(v)]
        if not matching:
            what = f"no stable version matches {reference.range.text}"
            raise _not_found(reference, what, versions, labels)
        return max(matching), None
    return _default(reference, versions, labels, caller)


def canary_bucket(prompt: str, caller: str) -> int:
    """A number 0-99, stable across processes and restarts, for one prompt and one caller."""
    digest = hashlib.blake2b(f"{prompt}\x00{caller}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100


def pick_canary(prompt: str, labels: Mapping[str, LabelTarget], caller: str) -> str | None:
    """The weighted label this caller's default calls take, if any.

    Weighted labels take consecutive slices of the 0-99 buckets in the order labels.yaml lists
    them: a first label of weight 10 takes buckets 0-9, a second of weight 5 takes 10-14.
    """
    bucket = canary_bucket(prompt, caller)
    start = 0
    for label, target in labels.items():
        if target.weight:
            if bucket < start + target.weight:
                return label
            start += target.weight
    return None


def _default(
    reference: Reference,
    versions: Sequence[semver.Version],
    labels: Mapping[str, LabelTarget],
    caller: str | None,
) -> tuple[semver.Version, str | None]:
    if caller is not None:
        label = pick_canary(reference.name, labels, caller)
        if label is not None:
            return semver.Version.parse(labels[label].version), label
    production = labels.get(PRODUCTION)
    if production is not None:
        return semver.Version.parse(production.version), PRODUCTION
    stable = [v for v in versions if not v.prerelease]
    if not stable:
        what = "no stable version and no production label (name a pre-release exactly)"
        raise _not_found(reference, what, versions, labels)
    return max(stable), None


def _not_found(
    reference: Reference,
    what: str,
    versions: Sequence[semver.Version],
    labels: Mapping[str, LabelTarget],
) -> PromptNotFound:
    have = f"versions: {', '.join(str(v) for v in sorted(versions))}"
    if labels:
        have += f"; labels: {', '.join(sorted(labels))}"
    return PromptNotFound(f"Prompt reference '{reference.text}': {what} ({have})")


def _bad(text: str, why: str) -> BadRequest:
    return BadRequest(f"Invalid prompt reference '{text}': {why} (forms: {_FORMS})")
