"""The semantic cache: a kept answer for a question that means the same as an earlier one.

Only the last user message is compared by meaning; everything else — the model, the sampling
parameters, the tools and the whole conversation before that message — must match exactly
(it is hashed into the vector scope), so an answer is never reused for another conversation.
Questions longer than the embeddings model reads whole are not looked up: two long texts that
share a beginning would look identical to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lockgate.cache.key import cache_key

__all__ = ["Embed", "SemanticCache", "SemanticLookup", "VectorIndex"]

log = logging.getLogger("lockgate.cache")

MAX_QUESTION_CHARS = 1000
"""About what all-MiniLM-L6-v2 reads whole (256 word pieces)."""

Embed = Callable[[str, str], Awaitable[list[float]]]
"""(embeddings model, text) -> its vector."""


class VectorIndex(Protocol):
    """`MemoryVectorIndex` or `RedisVectorIndex`."""

    async def add(
        self, scope: str, vector: Sequence[float], entry_id: str, expires_at: float
    ) -> None: ...

    async def nearest(
        self, scope: str, vector: Sequence[float], threshold: float, now: float
    ) -> tuple[str, float] | None: ...


@dataclass(slots=True)
class SemanticLookup:
    scope: str
    question: str
    vector: list[float] | None = field(default=None)
    """Set by the lookup; the answer kept later is indexed under it."""


class SemanticCache:
    def __init__(
        self,
        embeddings_model: str,
        threshold: float,
        index_for: Callable[[int], VectorIndex],
    ) -> None:
        self._model = embeddings_model
        self._threshold = threshold
        self._index_for = index_for
        self._index: VectorIndex | None = None
        self._writes: set[asyncio.Task[None]] = set()

    def lookup(self, scope: str, form: str, raw: Mapping[str, Any]) -> SemanticLookup | None:
        """What to compare for this request, or None when it has no short last question."""
        messages = raw.get("messages")
        if not isinstance(messages, list) or not messages:
            return None
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "user":
            return None
        question = _text(last.get("content"))
        if not question or len(question) > MAX_QUESTION_CHARS:
            return None
        context = {**raw, "messages": [*messages[:-1], {**last, "content": None}]}
        exact_rest = cache_key(form, f"{scope}\0{self._model}", context)
        return SemanticLookup(f"{exact_rest}", question)

    async def find(self, lookup: SemanticLookup, embed: Embed) -> tuple[str, float] | None:
        """(exact cache key of the nearest kept answer, similarity); None below the threshold."""
        try:
            lookup.vector = await embed(self._model, lookup.question)
            index = self._ensure_index(len(lookup.vector))
            return await index.nearest(lookup.scope, lookup.vector, self._threshold, time.time())
        except Exception as error:  # a failing embeddings model or index is a miss
            log.warning("semantic cache lookup failed (%s): %s", type(error).__name__, error)
            return None

    def remember(self, lookup: SemanticLookup, key: str, ttl_s: float) -> None:
        if lookup.vector is None or self._index is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._add(self._index, lookup.scope, lookup.vector, key, time.time() + ttl_s)
        )
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=2)

    def _ensure_index(self, dimensions: int) -> VectorIndex:
        if self._index is None:
            self._index = self._index_for(dimensions)
        return self._index

    @staticmethod
    async def _add(
        index: VectorIndex, scope: str, vector: list[float], key: str, expires_at: float
    ) -> None:
        try:
            await index.add(scope, vector, key, expires_at)
        except Exception as error:
            log.warning("semantic cache write failed (%s): %s", type(error).__name__, error)


def _text(content: object) -> str | None:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        if len(texts) == len(content):  # images and files are not compared by meaning
            return " ".join(texts).strip()
    return None
