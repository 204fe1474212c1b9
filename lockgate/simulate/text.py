"""Deterministic reply text and its split into stream pieces (one word each)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, cycle, islice

_HEADER = ("Simulated", "reply", "to:")
_FILLER = (
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
    "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua",
)  # fmt: skip
# Only the start of the user's text is echoed, so huge prompts cost nothing extra.
_ECHO_WORDS = 8
_ECHO_CHARS = 256


def reply_text(user_text: str, words: int) -> str:
    """``Simulated reply to: <first user words> lorem ipsum ...``, exactly ``words`` words."""
    seed = user_text[:_ECHO_CHARS].split()[:_ECHO_WORDS]
    return " ".join(islice(chain(_HEADER, seed, cycle(_FILLER)), words))


def pieces_of(text: str) -> tuple[str, ...]:
    """Split on single spaces so that ``"".join(pieces) == text`` exactly."""
    if not text:
        return ()
    head, *rest = text.split(" ")
    return (head, *(" " + word for word in rest))


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Truncate before the earliest stop sequence; report whether one was hit."""
    positions = [index for stop in stops if (index := text.find(stop)) >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True
