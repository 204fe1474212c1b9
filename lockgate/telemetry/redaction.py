"""Redacting secrets and personal data from request and response bodies before they are logged.

Used only with `observability.log_bodies: true`, so it favours catching too much over speed: a
logged body is copied into log stores with wide access. Each match becomes `[REDACTED:<kind>]`.
Card numbers must pass the Luhn check, so order ids and timestamps are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MAX_LOGGED_BODY", "BodyRedactor"]

MAX_LOGGED_BODY = 16 * 1024
"""Characters of a body kept in a log line; the rest is cut (and says so)."""

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (
            "private_key",
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
        ),
        ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ("aws_access_key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
        ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
        ("gitlab_token", r"\bgl(?:pat|dt|rt|cbt|ptt|ft|imt|agent|oas|soat)-[A-Za-z0-9_-]{20,}"),
        ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("openai_key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),
        ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
        ("lockgate_key", r"\blg-[A-Za-z0-9_-]{40,}"),
        (
            "secret",
            r"(?i)(?<![A-Za-z0-9])(?:password|passwd|secret|api[_-]?key|access[_-]?token|"
            r"auth[_-]?token|client[_-]?secret)(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?"
            r"[^\s\"'\\,;]{6,}",
        ),
        ("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
        ("iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        ("ip_address", r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
        (
            "phone",  # international (+49 30 1234 5678) or North American (555) 123-4567
            r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(?\d{1,4}\)?[ .-]?){1,4}\d{2,4}"
            r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?!\w)",
        ),
    )
)
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")


class BodyRedactor:
    """Replaces secrets (the config's own, and well-known token shapes) and personal data."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        self._known = sorted({s for s in known_secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, body: bytes) -> str:
        text = body.decode("utf-8", "replace")
        cut = len(text) > MAX_LOGGED_BODY
        if cut:
            text = text[:MAX_LOGGED_BODY]
        for secret in self._known:
            text = text.replace(secret, "[REDACTED:configured_secret]")
        text = _CARD.sub(_card, text)
        for kind, pattern in _PATTERNS:
            text = pattern.sub(f"[REDACTED:{kind}]", text)
        return text + (f"...[cut at {MAX_LOGGED_BODY} characters]" if cut else "")


def _card(match: re.Match[str]) -> str:
    digits = [int(c) for c in match.group() if c.isdigit()]
    return "[REDACTED:credit_card]" if _luhn(digits) else match.group()


def _luhn(digits: list[int]) -> bool:
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0
