"""Secret scanners: token shapes that start with a literal, and values assigned to secret names.

Used by `lockgate.guard.detectors.secrets_detector`; how the patterns are made fast is told there.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from lockgate.guard.scanning import Finding, Out, ScannedText, Scanner

__all__ = ["SECRET_SCANNERS"]


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
) -> Scanner:
    """Matches of `pattern`; its named group says the kind (else the only kind).

    `gate`: characters that must all be in the text (a memchr each, much cheaper than a scan).
    `literal`: a long substring the token contains (`in` skips through text faster than `re`).
    `check`: on the matched token; `widen`: moves the start left (to include a URL's scheme).
    """
    default = kinds[0]

    def run(scanned: ScannedText, enabled: frozenset[str], out: Out) -> None:
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

    return Scanner(frozenset(kinds), run)


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


def _prefixed(separator: str, shapes: dict[str, _Prefixed]) -> Scanner:
    """Tokens made of a lower-case prefix, `separator` (- or _) and a long random part.

    One scan finds every separator after a lower-case letter and before 10 token characters
    (rare in prose and code); the word before it picks the shape, whose pattern then confirms
    the token from its start. One scan instead of one per prefix.
    """
    sep = re.escape(separator)
    body = "[A-Za-z0-9_-]" if separator == "-" else "[A-Za-z0-9]"  # sk-proj-..., not snake_case
    candidates = re.compile(f"{sep}(?<=[a-z]{sep})(?={body}{{10}})")  # one character: sk-ant-
    lengths = sorted({len(prefix) for prefix in shapes}, reverse=True)

    def run(scanned: ScannedText, enabled: frozenset[str], out: Out) -> None:
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

    return Scanner(frozenset(shape.kind for shape in shapes.values()), run)


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


def _private_keys(scanned: ScannedText, enabled: frozenset[str], out: Out) -> None:
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


_PRIVATE_KEYS = Scanner(frozenset({"private_key", "gcp_service_account"}), _private_keys)


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


def _assignments(scanned: ScannedText, enabled: frozenset[str], out: Out) -> None:
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


def _assigned_kind(scanned: ScannedText, m: re.Match[str], value: str) -> str | None:
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


_GENERIC = Scanner(
    frozenset({"generic_secret", "aws_secret_key", "gcp_service_account"}), _assignments
)

SECRET_SCANNERS = (
    _AWS_AND_GOOGLE,
    _JWT,
    _DASHED,
    _UNDERSCORED,
    _SLACK_WEBHOOK,
    _PRIVATE_KEYS,
    _GENERIC,  # last: on the same span a specific kind (jwt, aws_access_key) wins
)
