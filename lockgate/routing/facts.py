"""What routing rules and context-window checks know about a request."""

from __future__ import annotations

from collections.abc import Mapping

from lockgate.config.models import Comparison, RuleCondition
from lockgate.schemas.chat import ChatCompletionRequest
from lockgate.usage.tokens import estimate_input_tokens

__all__ = ["RequestFacts", "matches", "parse_tags"]

MAX_TAGS = 32
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 256


class RequestFacts:
    """Facts about one chat request; the token estimate is computed only if asked for."""

    __slots__ = ("_input_tokens", "_request", "stream", "tags", "tools")

    def __init__(self, request: ChatCompletionRequest, tags: Mapping[str, str]) -> None:
        self._request = request
        self._input_tokens: int | None = None
        self.stream = bool(request.stream)
        self.tools = bool(request.tools)
        self.tags = tags

    @property
    def input_tokens(self) -> int:
        if self._input_tokens is None:
            self._input_tokens = estimate_input_tokens(self._request)
        return self._input_tokens


def parse_tags(header: bytes | None) -> dict[str, str]:
    """`x-lockgate-tags: team=search, env=prod` -> {"team": "search", "env": "prod"}."""
    if not header:
        return {}
    tags = {}
    for item in header.decode("latin-1").split(",")[:MAX_TAGS]:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if sep and key and len(key) <= MAX_TAG_KEY and len(value) <= MAX_TAG_VALUE:
            tags[key] = value
    return tags


def matches(condition: RuleCondition, facts: RequestFacts) -> bool:
    if condition.stream is not None and condition.stream != facts.stream:
        return False
    if condition.tools is not None and condition.tools != facts.tools:
        return False
    if condition.tags and any(facts.tags.get(k) != v for k, v in condition.tags.items()):
        return False
    return condition.input_tokens is None or _holds(condition.input_tokens, facts.input_tokens)


def _holds(comparison: Comparison, value: float) -> bool:
    return (
        (comparison.lt is None or value < comparison.lt)
        and (comparison.lte is None or value <= comparison.lte)
        and (comparison.gt is None or value > comparison.gt)
        and (comparison.gte is None or value >= comparison.gte)
    )
