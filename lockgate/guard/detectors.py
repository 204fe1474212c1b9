"""Secret and personal-data detectors, fast enough to run on every request.

Why our own: detect-secrets 1.5.0 (Yelp) took 67-88 ms to scan one 4 KB text through its Python
API (6-11 ms for its 27 plugins without their filters), a thousand times our budget of well under
60 µs for secrets and personal data together, and it finds no personal data. These detectors
take 25-45 µs for every kind on the same texts (`bench/protection.py`).

How: CPython's `re` tries a pattern at every position unless it starts with a literal, which it
skips to in C; so every pattern here starts with one, and a word-boundary check is a lookbehind
placed after that literal. Token prefixes that share a separator (`glpat-`, `sk-`, `xoxb-`;
`ghp_`, `sk_live_`) are found by one scan for the separator. Names of assignments (`password =`)
are found in the lower-cased text; numbers, IBANs and national ids in a "shape" of the text
(every digit `0`, every letter `A` or `a`), where the literal `000` starts every card number.
Checksums (Luhn, ISO 13616 mod 97, the DNI letter) and the randomness of an assigned value
(Shannon entropy, no words) are computed for candidates only.

Spans: a token kind covers the token; an assignment kind (`generic_secret`, `aws_secret_key`,
the `private_key_id` of `gcp_service_account`) covers the value only, so a redacted text reads
`password = [REDACTED:generic_secret]`. Loopback and unspecified addresses (127.0.0.0/8,
0.0.0.0, ::1, ::) are not reported as `ip_address`: they identify no one and are in every
config; private ranges are reported.

Where: the secret scanners are in `secret_patterns`, the personal-data ones in `pii_patterns`,
and what they share (`Finding`, the scanned text and its shape, `merge`) in `scanning`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Protocol

from lockgate.guard.pii_patterns import PII_SCANNERS
from lockgate.guard.scanning import Finding, Out, Run, ScannedText, Scanner, merge
from lockgate.guard.secret_patterns import SECRET_SCANNERS

__all__ = [
    "PII_KINDS",
    "SECRET_KINDS",
    "Detector",
    "Finding",
    "merge",
    "pii_detector",
    "regex_detector",
    "secrets_detector",
]


class Detector(Protocol):
    def find(self, text: str) -> list[Finding]:
        """Findings sorted by start, not overlapping."""
        ...


SECRET_KINDS: tuple[str, ...] = (
    "aws_access_key",
    "aws_secret_key",
    "private_key",
    "gcp_service_account",
    "google_api_key",
    "jwt",
    "github_token",
    "gitlab_token",
    "slack_token",
    "slack_webhook",
    "openai_key",
    "anthropic_key",
    "stripe_key",
    "lockgate_key",
    "generic_secret",
)
PII_KINDS: tuple[str, ...] = (
    "email",
    "phone",
    "credit_card",
    "iban",
    "ip_address",
    "us_ssn",
    "uk_nino",
    "es_dni",
)


def secrets_detector(kinds: Collection[str] | None = None) -> Detector:
    """Secrets of the given kinds (all when None); ValueError for a kind not in SECRET_KINDS."""
    return _family("secrets", SECRET_KINDS, SECRET_SCANNERS, kinds)


def pii_detector(kinds: Collection[str] | None = None) -> Detector:
    """Personal data of the given kinds (all when None); ValueError for one not in PII_KINDS."""
    return _family("pii", PII_KINDS, PII_SCANNERS, kinds)


def regex_detector(kind: str, pattern: str) -> Detector:
    """Every non-empty match of `pattern` (a Python regular expression), reported as `kind`."""
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(
            f"pattern of {kind!r} is not a valid regular expression: {error}"
        ) from None
    return _RegexDetector(kind, compiled)


class _RegexDetector:
    __slots__ = ("_kind", "_pattern")

    def __init__(self, kind: str, pattern: re.Pattern[str]) -> None:
        self._kind = kind
        self._pattern = pattern

    def find(self, text: str) -> list[Finding]:
        kind = self._kind
        return [
            Finding(m.start(), m.end(), kind)
            for m in self._pattern.finditer(text)
            if m.end() > m.start()
        ]


class _Family:
    __slots__ = ("_kinds", "_runs")

    def __init__(self, kinds: frozenset[str], runs: tuple[Run, ...]) -> None:
        self._kinds = kinds
        self._runs = runs

    def find(self, text: str) -> list[Finding]:
        scanned = ScannedText(text)
        out: Out = []
        for run in self._runs:
            run(scanned, self._kinds, out)
        return merge(out) if len(out) > 1 else out


def _family(
    family: str,
    known: tuple[str, ...],
    scanners: tuple[Scanner, ...],
    kinds: Collection[str] | None,
) -> Detector:
    chosen = frozenset(known if kinds is None else (kinds,) if isinstance(kinds, str) else kinds)
    unknown = sorted(chosen.difference(known))
    if unknown:
        raise ValueError(
            f"unknown {family} kind(s) {', '.join(map(repr, unknown))}; valid: {', '.join(known)}"
        )
    return _Family(chosen, tuple(s.run for s in scanners if s.kinds & chosen))
