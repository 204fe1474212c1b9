"""Acting on what the rules found in a text: block, redact (with restorable placeholders), log.

`TextWindow` does the same for text that arrives in pieces (a streamed answer): it holds back
the end of the text until no match there can still grow, so a secret split across two chunks
is caught whole and never half-sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from lockgate.guard.detectors import Finding
from lockgate.guard.rules import CompiledRule, GuardrailBlocked, Hit, scan

__all__ = ["HOLD_CHARS", "Found", "Redactions", "TextWindow", "apply"]

log = logging.getLogger("lockgate.guardrails")

HOLD_CHARS = 96
"""Streamed text kept back: longer than any match with spaces in it (card, IBAN, phone)."""
CONTEXT_CHARS = 96
"""Text already sent that is scanned again with the next piece, for matches that need context."""
MAX_HOLD_CHARS = 8192
"""A run without whitespace longer than this is released even if it may be a token's start."""

_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z0-9_]+_\d+\]")


@dataclass(slots=True)
class Redactions:
    """The placeholders one request's input got, to put the originals back in its answer."""

    originals: dict[str, str] = field(default_factory=dict)
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)

    def placeholder(self, kind: str, value: str, restore: bool) -> str:
        if not restore:
            return f"[REDACTED:{kind}]"
        known = self._by_value.get((kind, value))
        if known is None:
            count = sum(1 for k, _ in self._by_value if k == kind) + 1
            known = f"[REDACTED:{kind}_{count}]"
            self._by_value[kind, value] = known
            self.originals[known] = value
        return known

    def restore_json(self, body: bytes) -> bytes:
        """Originals back into a JSON document (escaped, so the document stays valid)."""
        for placeholder, original in self.originals.items():
            token = placeholder.encode()
            if token in body:
                body = body.replace(token, orjson.dumps(original)[1:-1])
        return body

    def find(self, text: str) -> list[Finding]:
        return [
            Finding(m.start(), m.end(), "placeholder")
            for m in _PLACEHOLDER.finditer(text)
            if m.group() in self.originals
        ]


class _Placeholders:
    """Never called: the placeholders a window restores come from its own `Redactions`."""

    def find(self, text: str) -> list[Finding]:
        return []


_RESTORE = CompiledRule("restore", "redact", _Placeholders())
"""Stands for "put the original back" among a window's hits."""


@dataclass(slots=True)
class Found:
    """What `log` rules saw in one request, logged once per rule and kind, never the text."""

    request_id: str
    notes: list[tuple[str, str]] = field(default_factory=list)

    def add(self, rule: str, kind: str, what: str) -> None:
        if (rule, kind) not in self.notes:
            self.notes.append((rule, kind))
            log.warning(
                "guardrail %r found %s in the %s of request %s (action: log)",
                rule,
                kind,
                what,
                self.request_id,
            )


def apply(
    hits: Sequence[Hit],
    text: str,
    where: str,
    what: str,
    redactions: Redactions | None,
    found: Found,
) -> str:
    """`text` with every hit acted on; `GuardrailBlocked` if a blocking rule hit.

    `what` is "request" or "answer"; `where` names the field (never its content).
    """
    for hit in hits:
        if hit.rule.action == "block":
            raise GuardrailBlocked(
                f"Guardrail '{hit.rule.label}' blocked the {what}: {hit.kind} found in {where}"
            )
    pieces: list[str] = []
    position = 0
    for hit in hits:
        if hit.rule.action == "log":
            found.add(hit.rule.label, hit.kind, what)
            continue
        if hit.start < position:
            continue  # overlaps a hit already replaced
        pieces.append(text[position : hit.start])
        value = text[hit.start : hit.end]
        if hit.rule is _RESTORE and redactions is not None:
            pieces.append(redactions.originals[value])
        else:
            restore = hit.rule.restore
            pieces.append(
                redactions.placeholder(hit.kind, value, restore)
                if redactions is not None
                else f"[REDACTED:{hit.kind}]"
            )
        position = hit.end
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)


class TextWindow:
    """One streamed text (a choice's content, a content block): pieces in, safe text out."""

    __slots__ = ("_buffer", "_context", "_found", "_redactions", "_rules", "_where")

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        redactions: Redactions | None,
        where: str,
        found: Found,
    ) -> None:
        self._rules = rules
        self._redactions = redactions if redactions is not None and redactions.originals else None
        self._where = where
        self._found = found
        self._buffer = ""
        self._context = ""

    def feed(self, piece: str) -> str:
        self._buffer += piece
        return self._release(final=False)

    def finish(self) -> str:
        return self._release(final=True) if self._buffer else ""

    def _release(self, final: bool) -> str:
        context = self._context
        text = context + self._buffer
        hits = scan(self._rules, text)
        if self._redactions is not None:
            hits += [Hit(f.start, f.end, f.kind, _RESTORE) for f in self._redactions.find(text)]
            hits.sort(key=lambda hit: (hit.start, -hit.end))
        # Hits wholly in the context were acted on when it was released.
        hits = [hit for hit in hits if hit.end > len(context)]
        cut = len(text) if final else self._safe_cut(text, hits, len(context))
        done = [_clipped(hit, len(context)) for hit in hits if hit.end <= cut]
        released = apply(
            [_shifted(hit, len(context)) for hit in done],
            text[len(context) : cut],
            self._where,
            "answer",
            self._redactions,
            self._found,
        )
        self._context = text[max(0, cut - CONTEXT_CHARS) : cut]
        self._buffer = text[cut:]
        return released

    @staticmethod
    def _safe_cut(text: str, hits: list[Hit], start: int) -> int:
        end = len(text)
        limit = end - HOLD_CHARS
        if limit <= start:
            return start
        # Never cut inside a run without whitespace: it may be a token still arriving.
        space = max(text.rfind(" ", start, limit), text.rfind("\n", start, limit))
        cut = space + 1 if space >= start else start
        if cut == start and end - start > MAX_HOLD_CHARS:
            cut = limit
        moved = True
        while moved:
            moved = False
            for hit in hits:
                if hit.start < cut < hit.end or (hit.end == end and hit.start < cut):
                    cut = max(start, hit.start)
                    moved = True
        return cut


def _clipped(hit: Hit, start: int) -> Hit:
    return hit if hit.start >= start else Hit(start, hit.end, hit.kind, hit.rule)


def _shifted(hit: Hit, offset: int) -> Hit:
    return Hit(hit.start - offset, hit.end - offset, hit.kind, hit.rule)
