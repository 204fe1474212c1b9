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
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

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


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    """Character offset into the scanned text."""
    end: int
    kind: str


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
    return _family("secrets", SECRET_KINDS, _SECRET_SCANNERS, kinds)


def pii_detector(kinds: Collection[str] | None = None) -> Detector:
    """Personal data of the given kinds (all when None); ValueError for one not in PII_KINDS."""
    return _family("pii", PII_KINDS, _PII_SCANNERS, kinds)


def regex_detector(kind: str, pattern: str) -> Detector:
    """Every non-empty match of `pattern` (a Python regular expression), reported as `kind`."""
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(
            f"pattern of {kind!r} is not a valid regular expression: {error}"
        ) from None
    return _RegexDetector(kind, compiled)


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """Sorted, overlaps resolved: the earliest start wins, then the longest, then the first."""
    kept: list[Finding] = []
    end = -1
    for finding in sorted(findings, key=_position):
        if finding.start >= end:
            kept.append(finding)
            end = finding.end
    return kept


def _position(finding: Finding) -> tuple[int, int]:
    return finding.start, -finding.end


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


# --- The scanned text and its derived forms, each made at most once per scan ----------------------


class _Text:
    __slots__ = ("_digits", "_lower", "_shape", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._lower: str | None = None
        self._shape: bytes | None = None
        self._digits: bool | None = None

    @property
    def digits(self) -> bool:
        """Whether there is any ASCII digit (every number kind needs one; a memchr each)."""
        if self._digits is None:
            self._digits = any(digit in self.text for digit in "0123456789")
        return self._digits

    @property
    def lower(self) -> str:
        """Lower-cased with the same offsets (a few letters, like 'İ', lower to two characters)."""
        if self._lower is None:
            lower = self.text.lower()
            self._lower = (
                lower if len(lower) == len(self.text) else self.text.translate(_ASCII_LOWER)
            )
        return self._lower

    @property
    def shape(self) -> bytes:
        """One byte per character: digits `0`, ASCII letters `A`/`a`, other letters `a`."""
        if self._shape is None:
            self._shape = self.text.encode("latin-1", "replace").translate(_SHAPE)
        return self._shape


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _shape_table() -> bytes:
    table = bytearray(range(256))
    table[ord("0") : ord("9") + 1] = b"0" * 10
    table[ord("A") : ord("Z") + 1] = b"A" * 26
    table[ord("a") : ord("z") + 1] = b"a" * 26
    for c in (0xAA, 0xB5, 0xBA, *range(0xC0, 0x100)):
        if c not in (0xD7, 0xF7):  # x and ÷
            table[c] = ord("a")
    return bytes(table)


_SHAPE = _shape_table()

Out = list[Finding]
Run = Callable[[_Text, frozenset[str], Out], None]


@dataclass(frozen=True, slots=True)
class _Scanner:
    kinds: frozenset[str]
    run: Run


class _Family:
    __slots__ = ("_kinds", "_runs")

    def __init__(self, kinds: frozenset[str], runs: tuple[Run, ...]) -> None:
        self._kinds = kinds
        self._runs = runs

    def find(self, text: str) -> list[Finding]:
        scanned = _Text(text)
        out: Out = []
        for run in self._runs:
            run(scanned, self._kinds, out)
        return merge(out) if len(out) > 1 else out


def _family(
    family: str,
    known: tuple[str, ...],
    scanners: tuple[_Scanner, ...],
    kinds: Collection[str] | None,
) -> Detector:
    chosen = frozenset(known if kinds is None else (kinds,) if isinstance(kinds, str) else kinds)
    unknown = sorted(chosen.difference(known))
    if unknown:
        raise ValueError(
            f"unknown {family} kind(s) {', '.join(map(repr, unknown))}; valid: {', '.join(known)}"
        )
    return _Family(chosen, tuple(s.run for s in scanners if s.kinds & chosen))


# --- Small checks on candidates -------------------------------------------------------------------

_DIGITS = frozenset("0123456789")


def _mixed(token: str) -> bool:
    """At least two of upper case, lower case and digits, as random tokens have; slugs don't."""
    classes = (token.lower() != token) + (token.upper() != token) + (not _DIGITS.isdisjoint(token))
    return classes >= 2


_RANDOM_RUN = re.compile(r"[A-Za-z0-9]{20}")
_WORD = re.compile(r"[a-z]{3,}|[A-Z][a-z]{2,}|[A-Z]{3,}")
_WORD_SEPARATORS = re.compile(r"[-_./+]")


def _words(value: str) -> int:
    """Parts of `value` that are words (`secret`, `Access`, `KEY`): random text has none."""
    return sum(1 for part in _WORD_SEPARATORS.split(value) if _WORD.fullmatch(part))


def _random_key(body: str) -> bool:
    """A provider key's body: mixed, with 20 random characters in a row (not `my-test-key-1`)."""
    return _mixed(body) and _RANDOM_RUN.search(body) is not None


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(value)
    return -sum(k / n * math.log2(k / n) for k in Counter(value).values())


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


# --- Secrets: token shapes that start with a literal ----------------------------------------------

Check = Callable[[str], bool]


def _anchored(literal: str, rest: str, before: str = "[A-Za-z0-9_]") -> re.Pattern[str]:
    """`literal` first (for the fast prefix search), then: not preceded by a `before` character."""
    lit = re.escape(literal)
    return re.compile(f"{lit}(?<!{before}{lit}){rest}")


def _tokens(
    pattern: re.Pattern[str],
    kinds: tuple[str, ...],
    gate: str = "",
    check: Check | None = None,
    widen: Callable[[str, int], int] | None = None,
    literal: str = "",
) -> _Scanner:
    """Matches of `pattern`; its named group says the kind (else the only kind).

    `gate`: characters that must all be in the text (a memchr each, much cheaper than a scan).
    `literal`: a long substring the token contains (`in` skips through text faster than `re`).
    `check`: on the matched token; `widen`: moves the start left (to include a URL's scheme).
    """
    default = kinds[0]

    def run(scanned: _Text, enabled: frozenset[str], out: Out) -> None:
        text = scanned.text
        for char in gate:
            if char not in text:
                return
        if literal and literal not in text:
            return
        for m in pattern.finditer(text):
            kind = m.lastgroup or default
            if kind in enabled and (check is None or check(m.group())):
                start = m.start() if widen is None else widen(text, m.start())
                out.append(Finding(start, m.end(), kind))

    return _Scanner(frozenset(kinds), run)


def _after_scheme(text: str, start: int) -> int:
    for scheme in ("https://", "http://"):
        if text[max(0, start - len(scheme)) : start] == scheme:
            return start - len(scheme)
    return start


_AWS_AND_GOOGLE = _tokens(
    _anchored(
        "A",
        r"(?:(?P<aws_access_key>(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9]))"
        r"|(?P<google_api_key>Iza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])))",
        before="[A-Za-z0-9]",
    ),
    ("aws_access_key", "google_api_key"),
    gate="I",
)
_JWT = _tokens(
    _anchored(
        "eyJ",
        r"[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,}(?![A-Za-z0-9_-])",
        before="[A-Za-z0-9_-]",
    ),
    ("jwt",),
    gate="J.",
)
_SLACK_WEBHOOK = _tokens(
    re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,}"),
    ("slack_webhook",),
    gate="/",
    literal="hooks.slack.com",
    widen=_after_scheme,
)


@dataclass(frozen=True, slots=True)
class _Prefixed:
    """The token that a prefix starts: `pattern` matches it whole from the prefix on."""

    kind: str
    pattern: re.Pattern[str]
    check: Check | None = None


def _prefixed(separator: str, shapes: dict[str, _Prefixed]) -> _Scanner:
    """Tokens made of a lower-case prefix, `separator` (- or _) and a long random part.

    One scan finds every separator after a lower-case letter and before 10 token characters
    (rare in prose and code); the word before it picks the shape, whose pattern then confirms
    the token from its start. One scan instead of one per prefix.
    """
    sep = re.escape(separator)
    body = "[A-Za-z0-9_-]" if separator == "-" else "[A-Za-z0-9]"  # sk-proj-..., not snake_case
    candidates = re.compile(f"{sep}(?<=[a-z]{sep})(?={body}{{10}})")  # one character: sk-ant-
    lengths = sorted({len(prefix) for prefix in shapes}, reverse=True)

    def run(scanned: _Text, enabled: frozenset[str], out: Out) -> None:
        text = scanned.text
        if separator not in text:
            return
        end = 0
        for m in candidates.finditer(text):
            at = m.start()
            if at < end:
                continue  # inside a token already found
            for length in lengths:
                shape = shapes.get(text[at - length : at]) if length <= at else None
                if shape is None or shape.kind not in enabled:
                    continue
                token = shape.pattern.match(text, at - length)
                if token and (shape.check is None or shape.check(token.group())):
                    out.append(Finding(token.start(), token.end(), shape.kind))
                    end = token.end()
                break

    return _Scanner(frozenset(shape.kind for shape in shapes.values()), run)


_GITLAB_PREFIXES = "glpat gloas gldt glrt glrtr glcbt glptt glft glimt glagent glsoat glffct"
_GITLAB = _anchored(
    "gl",
    r"[a-z]{1,6}-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*",
)
_SLACK = _anchored("x", r"(?:ox[abposre]|app)-[A-Za-z0-9-]{10,}(?![A-Za-z0-9_])")
_SK = _anchored("sk-", r"(?!ant-)[A-Za-z0-9_-]{20,}", before="[A-Za-z0-9_-]")
_SK_ANT = _anchored("sk-ant-", r"[A-Za-z0-9_-]{20,}", before="[A-Za-z0-9_-]")
_LG = _anchored("lg-", r"[A-Za-z0-9_-]{40,}(?![A-Za-z0-9_-])", before="[A-Za-z0-9_-]")
_DASHED = _prefixed(
    "-",
    {
        **{p: _Prefixed("gitlab_token", _GITLAB, _mixed) for p in _GITLAB_PREFIXES.split()},
        **{
            p: _Prefixed("slack_token", _SLACK, _mixed)
            for p in ("xoxa", "xoxb", "xoxp", "xoxo", "xoxs", "xoxr", "xoxe", "xapp")
        },
        "sk": _Prefixed("openai_key", _SK, lambda token: _random_key(token[3:])),
        "sk-ant": _Prefixed("anthropic_key", _SK_ANT, lambda token: _random_key(token[7:])),
        "lg": _Prefixed("lockgate_key", _LG, lambda token: _mixed(token) and _words(token) < 2),
    },
)
_GITHUB = _anchored("gh", r"[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])")
_GITHUB_PAT = _anchored("github_pat_", r"[A-Za-z0-9_]{22,255}(?![A-Za-z0-9_])")
_STRIPE = re.compile(r"[rs]k_(?<![A-Za-z0-9_][rs]k_)(?:live|test)_[A-Za-z0-9]{20,}(?![A-Za-z0-9_])")
_UNDERSCORED = _prefixed(
    "_",
    {
        **{p: _Prefixed("github_token", _GITHUB) for p in ("ghp", "gho", "ghu", "ghs", "ghr")},
        "github_pat": _Prefixed("github_token", _GITHUB_PAT),
        **{
            p: _Prefixed("stripe_key", _STRIPE)
            for p in ("sk_live", "rk_live", "sk_test", "rk_test")
        },
    },
)

# A PEM private key of any type; one without its END line runs to the end of the text.
_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
    r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)"
)
_JSON_PRIVATE_KEY = re.compile(r"\\?\"private_key\\?\"\s*:\s*\\?\"\Z")


def _private_keys(scanned: _Text, enabled: frozenset[str], out: Out) -> None:
    text = scanned.text
    if "V" not in text or "-----BEGIN" not in text:
        return
    for m in _PEM.finditer(text):
        start = m.start()
        kind = "private_key"
        if (
            "gcp_service_account" in enabled
            and _JSON_PRIVATE_KEY.search(text, max(0, start - 32), start)
            and "service_account" in text
        ):
            kind = "gcp_service_account"
        if kind in enabled:
            out.append(Finding(start, m.end(), kind))


_PRIVATE_KEYS = _Scanner(frozenset({"private_key", "gcp_service_account"}), _private_keys)


# --- Secrets: values assigned to secret-sounding names --------------------------------------------

_VALUE = (
    r"(?P<tail>[a-z0-9_.-]{0,40})(?:\\?[\"'])?[ \t]{0,8}(?:==|=>|:=|[:=])[ \t]{0,8}"
    r"(?P<quote>\\?[\"'`])?(?P<value>[^\s\"'`\\,;&(){}\[\]<>]{1,512})"
)
# Run on the lower-cased text; a keyword followed by a letter is another word (tokenizer, keys).
# `token` and `key` share one scan for their `k`, the rarest letter of the four keywords.
_ASSIGNMENTS = tuple(
    re.compile(keyword + r"(?![a-z])" + _VALUE)
    for keyword in (r"pass(?:word|wd|phrase)?", "secret", r"k(?:(?<=tok)en|ey)")
)
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_.-"
_SEPARATORS = str.maketrans("", "", "_.-")
_KEY_QUALIFIERS = (
    "api",
    "access",
    "secret",
    "private",
    "signing",
    "encryption",
    "master",
    "auth",
    "client",
    "license",
    "app",
    "consumer",
    "subscription",
    "account",
    "service",
    "webhook",
    "hmac",
    "session",
    "shared",
)
"""What a name ending in `key` must have before `key` to name a secret (not `sort_key`)."""
_NOT_SECRET_SUFFIXES = (
    "name",
    "id",
    "ids",
    "arn",
    "path",
    "file",
    "url",
    "uri",
    "endpoint",
    "type",
    "length",
    "len",
    "size",
    "count",
    "limit",
    "ref",
    "version",
    "prefix",
    "suffix",
    "field",
    "header",
    "param",
    "env",
    "var",
    "dir",
    "format",
    "kind",
    "mode",
    "policy",
    "provider",
    "ttl",
    "expiry",
    "expiresat",
    "expiresin",
    "hint",
    "label",
    "pattern",
    "usage",
    "budget",
    "index",
)
"""Name endings (after the keyword) for things about a secret rather than the secret itself."""
_PLACEHOLDERS = (
    "example",
    "xxxx",
    "****",
    "....",
    "changeme",
    "change_me",
    "your",
    "placeholder",
    "redacted",
    "dummy",
    "sample",
)
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+]{40}")
_HEX40 = re.compile(r"[0-9a-f]{40}")
_CODE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_PARTS = re.compile(r"[-_.]")
_WORDY = re.compile(r"[A-Za-z]*[0-9]{0,2}|[0-9]+")
MIN_SECRET_LENGTH = 10
"""Shortest value `generic_secret` reports."""


def _assignments(scanned: _Text, enabled: frozenset[str], out: Out) -> None:
    text = scanned.text
    if "=" not in text and ":" not in text:
        return
    lower = scanned.lower
    # Values already found as tokens (GITLAB_TOKEN=glpat-...), and AWS_SECRET_ACCESS_KEY, which
    # both `secret` and `key` find, are looked at once.
    seen = {finding.start for finding in out}
    for pattern in _ASSIGNMENTS:
        for m in pattern.finditer(lower):
            start, end = m.span("value")
            if start in seen or end - start < MIN_SECRET_LENGTH:
                continue
            seen.add(start)
            kind = _assigned_kind(scanned, m, text[start:end])
            if kind is not None and kind in enabled:
                out.append(Finding(start, end, kind))


def _assigned_kind(scanned: _Text, m: re.Match[str], value: str) -> str | None:
    tail = m["tail"].translate(_SEPARATORS)
    if tail.endswith(_NOT_SECRET_SUFFIXES) and tail != "id":
        return None
    lower = scanned.lower
    start = m.start() - 2 if lower.startswith("ken", m.start()) else m.start()
    before = lower[max(0, start - 40) : start]
    before = before[len(before.rstrip(_NAME_CHARS)) :].translate(_SEPARATORS)
    keyword = lower[start : m.start("tail")]
    if tail == "id":
        if before.endswith("private") and keyword == "key" and _HEX40.fullmatch(value):
            return "gcp_service_account"
        return None
    name = before + keyword + tail
    if _AWS_SECRET.fullmatch(value) and ("aws" in name or "secretaccesskey" in name):
        return "aws_secret_key"
    if keyword == "key" and not before.endswith(_KEY_QUALIFIERS):
        return None
    if m["quote"] is None:  # bare: code (a call, a name, an attribute) or an env-file value
        if scanned.text[m.end("value") : m.end("value") + 1] in ("(", "["):
            return None
        if _CODE_NAME.fullmatch(value) and ("." in value or _DIGITS.isdisjoint(value)):
            return None
    return "generic_secret" if _looks_random(value) else None


def _looks_random(value: str) -> bool:
    """A value that a person or a program made random, not a word, a name, a path or a template."""
    n = len(value)
    if not MIN_SECRET_LENGTH <= n <= 512 or value[0] in "$%{*/" or "://" in value:
        return False
    lowered = value.lower()
    if any(word in lowered for word in _PLACEHOLDERS):
        return False
    parts = _PARTS.split(value)
    if (len(parts) > 1 and all(_WORDY.fullmatch(part) for part in parts)) or _words(value) > 1:
        return False  # a slug or a made-up value: prod-db-credentials-2024, my-test-token-5e0f
    entropy = _entropy(value)
    if _DIGITS.isdisjoint(value):
        return entropy >= 4.0  # random strings without a digit are long and varied
    return entropy >= min(3.5, 0.8 * math.log2(n))


_GENERIC = _Scanner(
    frozenset({"generic_secret", "aws_secret_key", "gcp_service_account"}), _assignments
)

_SECRET_SCANNERS = (
    _AWS_AND_GOOGLE,
    _JWT,
    _DASHED,
    _UNDERSCORED,
    _SLACK_WEBHOOK,
    _PRIVATE_KEYS,
    _GENERIC,  # last: on the same span a specific kind (jwt, aws_access_key) wins
)


# --- Personal data --------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
)
_LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"


def _emails(scanned: _Text, enabled: frozenset[str], out: Out) -> None:
    text = scanned.text
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        at = m.start()
        limit = max(0, at - 64)
        start = limit + len(text[limit:at].rstrip(_LOCAL_CHARS))
        if start == limit and start and text[start - 1] in _LOCAL_CHARS:
            continue  # a local part is at most 64 characters
        while start < at and text[start] == ".":
            start += 1
        if start < at and not _in_url(text, start):
            out.append(Finding(start, m.end(), "email"))


def _in_url(text: str, start: int) -> bool:
    """`scheme://user@host` or `scheme://user:password@host`: credentials, not an address."""
    if text[max(0, start - 3) : start] == "://":
        return True
    if text[start - 1 : start] != ":":
        return False
    scheme = text.rfind("://", max(0, start - 128), start)
    return scheme >= 0 and not any(c.isspace() or c == "/" for c in text[scheme + 3 : start])


# Numbers, on the shape (digits are 0): the literal 000 is the first three digits of a number.
_NUMBERS = re.compile(
    rb"000(?<![0Aa_]000)(?:"
    rb"(?P<us_ssn>-00-0000)"
    rb"|(?P<nanp>(?P<nsep>[-.])000(?P=nsep)0000)"
    rb"|(?P<nanp_paren>(?<=\(000)\)[ ]?000[-. ]0000)"
    rb"|(?P<card>0(?P<csep>[ -])0000(?P=csep)0000(?P=csep)0{1,4}(?:(?P=csep)000)?)"
    rb"|(?P<card_amex>0(?P<asep>[ -])000000(?P=asep)0{4,5})"
    rb"|(?P<card_solid>0{10,16})"
    rb"|(?P<es_dni>00000A)"
    rb")(?![0Aa_])"
)
_NUMBER_KINDS = {
    "us_ssn": "us_ssn",
    "nanp": "phone",
    "nanp_paren": "phone",
    "card": "credit_card",
    "card_amex": "credit_card",
    "card_solid": "credit_card",
    "es_dni": "es_dni",
}
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _numbers(scanned: _Text, enabled: frozenset[str], out: Out) -> None:
    if not scanned.digits:
        return
    text = scanned.text
    for m in _NUMBERS.finditer(scanned.shape):
        group = m.lastgroup or ""
        kind = _NUMBER_KINDS[group]
        if kind not in enabled:
            continue
        start, end = m.span()
        found = text[start:end]
        if kind == "credit_card":
            end = _card_end(found, start, group == "card")
            if end < 0:
                continue
        elif kind == "us_ssn":
            area, group_number, serial = found.split("-")
            if area in ("000", "666") or area[0] == "9" or group_number == "00" or serial == "0000":
                continue
        elif kind == "phone":
            if group == "nanp_paren":
                start -= 1
            if found[0] in "01":  # an area code starts with 2-9
                continue
        elif _DNI_LETTERS[int(found[:8]) % 23] != found[8]:
            continue
        out.append(Finding(start, end, kind))


def _card_end(found: str, start: int, grouped: bool) -> int:
    """End of a card number (13-19 digits, an issuer's first digit, Luhn), or -1."""
    digits = found.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn(digits):
        return start + len(found)
    if grouped and found.count(found[4]) == 4:  # 4-4-4-4-3: maybe the last 3 are not the card's
        head = found[: found.rindex(found[4])]
        if _luhn(head.replace(found[4], "")) and head[0] in "23456":
            return start + len(head)
    return -1


# International numbers: +, a country code, groups of digits with one separator between them.
_PHONE = re.compile(rb"\+0(?<![0Aa_+]\+0)0*+(?:(?:[ .-]|[ ]?\(|\)[ .-]?)0++)*+(?![Aa_])")
_PHONE_GROUPS = re.compile(r"[0-9]+")
_DATE = re.compile(r"\+[0-9]{4}([-./])[0-9]{1,2}\1[0-9]{1,2}\Z")


def _phones(scanned: _Text, enabled: frozenset[str], out: Out) -> None:
    if not scanned.digits:
        return
    text = scanned.text
    if "+" not in text:
        return
    for m in _PHONE.finditer(scanned.shape):
        start, end = m.span()
        if end - start < 9:  # fewer than 8 digits
            continue
        groups = list(_PHONE_GROUPS.finditer(text, start, end))
        digits = sum(g.end() - g.start() for g in groups)
        while digits > 15 and len(groups) > 2:  # the next number was taken along: drop it
            digits -= groups[-1].end() - groups[-1].start()
            groups.pop()
        end = groups[-1].end()
        found = text[start:end]
        if (
            8 <= digits <= 15
            and found[1] != "0"
            and found.count("(") == found.count(")")
            and not _DATE.match(found)
            and not (
                len(groups) > 2 and "." in found and all(len(g.group()) == 3 for g in groups[1:])
            )
        ):
            out.append(Finding(start, end, "phone"))


# IPv4 on the shape: the literal "0." is the last digit of the first octet and its dot.
_IPV4 = re.compile(rb"0\.0{1,3}\.0{1,3}\.0{1,3}(?![0Aa_]|\.0)")


def _ipv4(scanned: _Text, enabled: frozenset[str], out: Out) -> None:
    if not scanned.digits:
        return
    shape, text = scanned.shape, scanned.text
    for m in _IPV4.finditer(shape):
        start = m.start()
        while start > 0 and m.start() - start < 2 and shape[start - 1] == 48:  # b"0"
            start -= 1
        if start > 0 and shape[start - 1] in b"0Aa_.":
            continue
        octets = text[start : m.end()].split(".")
        if any((len(o) > 1 and o[0] == "0") or int(o) > 255 for o in octets):
            continue
        if octets[0] in ("0", "127") or octets == ["255", "255", "255", "255"]:
            continue  # unspecified, loopback, broadcast: nobody's address
        out.append(Finding(start, m.end(), "ip_address"))


_HEX = "[0-9A-Fa-f]"
_IPV6 = re.compile(
    rf":(?:(?P<compressed>:(?:(?:{_HEX}{{1,4}}:){{0,5}}"
    rf"(?:[0-9]{{1,3}}(?:\.[0-9]{{1,3}}){{3}}|{_HEX}{{1,4}}))?(?![\w:]))"
    rf"|(?<={_HEX}:)(?:{_HEX}{{1,4}}:){{6}}{_HEX}{{1,4}}(?![\w:.]))"
)
_HEX_OR_COLON = "0123456789abcdefABCDEF:"
_IPV6_GROUPS = re.compile(r"[:.]")


def _ipv6(scanned: _Text, enabled: frozenset[str], out: Out) -> None:
    """Full and compressed forms (with `::`); not Rust or C++ paths (`a::b`, `Vec::new`).

    The match starts at the first colon (`re` skips to colons fast); the groups before it
    are found by walking back.
    """
    text = scanned.text
    if ":" not in text:
        return
    end = 0
    for m in _IPV6.finditer(text):
        start = m.start()
        if start < end:
            continue
        limit = max(0, start - (35 if m["compressed"] is not None else 4))
        start = limit + len(text[limit:start].rstrip(_HEX_OR_COLON))
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.:"):
            continue
        found = text[start : m.end()]
        if (found.startswith(":") and not found.startswith("::")) or ":::" in found:
            continue
        groups = [g for g in _IPV6_GROUPS.split(found) if g]
        if m["compressed"] is not None and (
            found.count("::") > 1 or len(groups) > 7 or not any(len(g) == 4 for g in groups)
        ):
            continue  # at least one group of four hex digits: not loopback, a::b or x[100::200]
        end = m.end()
        out.append(Finding(start, end, "ip_address"))


# IBAN (country, check digits, groups of four) and UK National Insurance numbers, on the shape.
_IBAN_OR_NINO = re.compile(
    rb"AA(?<![0Aa_]AA)(?:"
    rb"(?P<iban>00(?:[ ]?[0A]{4}){2,7}(?:[ ]?[0A]{1,3})?)"
    rb"|(?P<uk_nino>(?:000000|[ ]00[ ]00[ ]00[ ])A)"
    rb")(?![0Aa_])"
)
_IBAN_TABLE = (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 "
    "DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 "
    "HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 "
    "MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 "
    "RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 "
    "VG24 XK20 YE30"
)
"""Each country's IBAN length (ISO 13616 registry)."""
_IBAN_LENGTHS = {entry[:2]: int(entry[2:]) for entry in _IBAN_TABLE.split()}
_LETTER_NUMBERS = {
    ord(letter): str(number) for number, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10)
}
"""A is 10, B is 11 ... Z is 35, as the IBAN check reads letters."""
_NINO_NEVER = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _iban_valid(iban: str) -> bool:
    """ISO 13616: the country's length, and mod 97 of the rearranged number is 1."""
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    return int((iban[4:] + iban[:4]).translate(_LETTER_NUMBERS)) % 97 == 1


def _iban_and_nino(scanned: _Text, enabled: frozenset[str], out: Out) -> None:
    if not scanned.digits:
        return
    text = scanned.text
    for m in _IBAN_OR_NINO.finditer(scanned.shape):
        kind = m.lastgroup or ""
        found = text[m.start() : m.end()]
        if kind in enabled and (
            _iban_valid(found.replace(" ", "")) if kind == "iban" else _nino_valid(found)
        ):
            out.append(Finding(m.start(), m.end(), kind))


def _nino_valid(nino: str) -> bool:
    """HMRC's rules for the letters (there is no check digit); a serial of zeros is not issued."""
    return not (
        nino[2:-1].strip(" 0") == ""
        or nino[0] in "DFIQUV"
        or nino[1] in "DFIOQUV"
        or nino[:2] in _NINO_NEVER
        or nino[-1] not in "ABCD"
    )


_PII_SCANNERS = (
    _Scanner(frozenset({"email"}), _emails),
    _Scanner(frozenset({"credit_card", "phone", "us_ssn", "es_dni"}), _numbers),
    _Scanner(frozenset({"phone"}), _phones),
    _Scanner(frozenset({"ip_address"}), _ipv4),
    _Scanner(frozenset({"ip_address"}), _ipv6),
    _Scanner(frozenset({"iban", "uk_nino"}), _iban_and_nino),
)
