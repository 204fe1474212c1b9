"""The response cache as the request path sees it: a plan per request, lookups and stores."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lockgate.auth.policy import Principal
from lockgate.cache.key import cache_key, cache_scope
from lockgate.cache.semantic import Embed, SemanticCache, SemanticLookup
from lockgate.cache.stores import CacheStore
from lockgate.config.models import CacheConfig, ModelConfig
from lockgate.options import RequestOptions

__all__ = ["CachePlan", "Hit", "ResponseCache"]

MAX_MEMO = 1024


@dataclass(frozen=True, slots=True)
class CachePlan:
    key: str
    lookup: bool
    """Look for a kept answer (not with `no-cache`)."""
    store: bool
    """Keep this request's answer (not with `no-store`)."""
    ttl_s: float
    semantic: SemanticLookup | None = None

    @property
    def header(self) -> bytes:
        """`x-lockgate-cache` of an answer that was not a hit."""
        return b"miss" if self.lookup else b"bypass"


BYPASS = CachePlan("", lookup=False, store=False, ttl_s=0.0)


@dataclass(frozen=True, slots=True)
class Hit:
    body: bytes
    similarity: float | None = None
    """Set for a semantic hit: the cosine similarity of the two questions."""


class ResponseCache:
    def __init__(
        self,
        config: CacheConfig,
        models: Sequence[ModelConfig],
        store: CacheStore,
        semantic: SemanticCache | None = None,
    ) -> None:
        self._semantic = semantic
        self._ttl_s = config.ttl_s
        self._max_entry_bytes = config.max_entry_bytes
        self._store = store
        self._model_ttls = [(m.name, m.cache_ttl_s) for m in models if m.cache_ttl_s is not None]
        self._ttl_memo: dict[str, float] = {}

    def plan(
        self,
        principal: Principal,
        form: str,
        raw: Mapping[str, Any],
        model: str,
        options: RequestOptions,
    ) -> CachePlan:
        model_ttl_s = self._model_ttl(model)
        if model_ttl_s == 0:
            return BYPASS  # the operator's "never" is not the caller's to override
        ttl_s = options.cache_ttl_s or model_ttl_s
        scope = cache_scope(principal)
        lookup, store = options.cache != "no-cache", options.cache != "no-store"
        semantic = None
        if self._semantic is not None and lookup and store:
            semantic = self._semantic.lookup(scope, form, raw)
        return CachePlan(cache_key(form, scope, raw), lookup, store, ttl_s, semantic)

    async def get(self, plan: CachePlan, embed: Embed) -> Hit | None:
        """The kept answer to this request, else to one whose question means the same."""
        if not plan.lookup:
            return None
        body = await self._store.get(plan.key)
        if body is not None:
            return Hit(body)
        if plan.semantic is None or self._semantic is None:
            return None
        found = await self._semantic.find(plan.semantic, embed)
        if found is None:
            return None
        key, similarity = found
        body = await self._store.get(key)
        return Hit(body, similarity) if body is not None else None

    def keep(self, plan: CachePlan, body: bytes) -> None:
        if plan.store and len(body) <= self._max_entry_bytes:
            self._store.put(plan.key, body, plan.ttl_s)
            if plan.semantic is not None and self._semantic is not None:
                self._semantic.remember(plan.semantic, plan.key, plan.ttl_s)

    async def close(self) -> None:
        if self._semantic is not None:
            await self._semantic.close()

    def _model_ttl(self, model: str) -> float:
        ttl = self._ttl_memo.get(model)
        if ttl is None:
            ttl = self._ttl_s
            for name, model_ttl in self._model_ttls:
                if name == model or ("*" in name and fnmatch.fnmatchcase(model, name)):
                    ttl = model_ttl
                    break
            if len(self._ttl_memo) >= MAX_MEMO:
                self._ttl_memo.clear()
            self._ttl_memo[model] = ttl
        return ttl
