"""Redacting secrets and personal data from request and response bodies before they are logged.

Used only with `observability.log_bodies: true`: a logged body is copied into log stores with
wide access. The config's own secrets go first, as they are; then every kind of the guardrail
detectors (`lockgate.guard.detectors`), and one rule of the log's own: any value of six or more
characters assigned to a password-like name is `secret`, however guessable. The detectors'
`generic_secret` wants a random-looking value; a log would rather lose a harmless one. Each
finding becomes `[REDACTED:<kind>]`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lockgate.guard.detectors import Finding, merge, pii_detector, secrets_detector

__all__ = ["MAX_LOGGED_BODY", "BodyRedactor"]

MAX_LOGGED_BODY = 16 * 1024
"""Characters of a body kept in a log line; the rest is cut (and says so)."""

_DETECTORS = (secrets_detector(), pii_detector())
_ASSIGNED = re.compile(
    r"(?<![a-z0-9])(?:password|passwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token"
    r"|client[_-]?secret)(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?(?P<value>[^\s\"'\\,;]{6,})"
)
_NAMES = ("pass", "secret", "key", "token")
"""Cheap test before `_ASSIGNED` (which has no literal to skip to)."""
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


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
            if secret in text:
                text = text.replace(secret, "[REDACTED:configured_secret]")
        # The detectors' findings come first, so on the same span their kind is kept.
        findings = merge([*(f for d in _DETECTORS for f in d.find(text)), *_assigned(text)])
        pieces: list[str] = []
        position = 0
        for finding in findings:
            pieces += (text[position : finding.start], f"[REDACTED:{finding.kind}]")
            position = finding.end
        pieces.append(text[position:])
        return "".join(pieces) + (f"...[cut at {MAX_LOGGED_BODY} characters]" if cut else "")


def _assigned(text: str) -> list[Finding]:
    lower = text.lower()
    if len(lower) != len(text):  # a letter like 'İ' lowers to two characters: keep the offsets
        lower = text.translate(_ASCII_LOWER)
    if not any(name in lower for name in _NAMES):
        return []
    return [Finding(m.start("value"), m.end("value"), "secret") for m in _ASSIGNED.finditer(lower)]
