"""What every detector scans with: findings, the scanned text's derived forms, scanners.

A scanner is a function that appends the findings of its kinds to a list; `ScannedText` makes the
lower-cased text and the "shape" of the text (every digit `0`, every letter `A` or `a`) at most
once per scan, for whichever scanners need them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["Finding", "Out", "Run", "ScannedText", "Scanner", "merge"]


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    """Character offset into the scanned text."""
    end: int
    kind: str


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


# --- The scanned text and its derived forms, each made at most once per scan ----------------------


class ScannedText:
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
Run = Callable[[ScannedText, frozenset[str], Out], None]


@dataclass(frozen=True, slots=True)
class Scanner:
    """A scan that appends findings of `kinds` (those enabled) to the list it is given."""

    kinds: frozenset[str]
    run: Run
