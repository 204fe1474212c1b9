"""`lockgate ci sentiment`: each commit message rated by the `sentiment` prompt, and a gate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lockgate.gitlab.commits import CommitMessage

__all__ = ["Rated", "below", "rate"]

Ask = Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]
"""Calls the prompt API with an input; its JSON answer."""


@dataclass(frozen=True, slots=True)
class Rated:
    commit: CommitMessage
    score: float
    label: str


async def rate(commits: Sequence[CommitMessage], ask: Ask) -> list[Rated]:
    rated = []
    for commit in commits:
        answer = await ask({"text": commit.message})
        score, label = answer.get("score"), answer.get("label")
        if not isinstance(score, int | float) or not isinstance(label, str):
            raise ValueError(
                f"the sentiment prompt answered without a numeric score and a label: {answer}"
            )
        rated.append(Rated(commit, float(score), label))
    return rated


def below(rated: Sequence[Rated], min_score: float | None) -> list[Rated]:
    """The commits that fail the gate: every one must score at least `min_score`."""
    if min_score is None:
        return []
    return [entry for entry in rated if entry.score < min_score]
