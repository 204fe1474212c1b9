"""An answer's way from the upstream to the client: output guardrails, the cache, restoring.

Order matters: output rules run first (a blocked answer is neither kept nor sent); the cache
keeps the guarded answer with the request's placeholders still in it (the cache key was taken
on the redacted request, so another caller whose input redacted the same way may get it); the
originals go back in last, for this caller only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Literal

from lockgate.cache.assemble import AnthropicStreamAssembler, OpenAIStreamAssembler
from lockgate.cache.replay import anthropic_stream, openai_stream
from lockgate.cache.responses import CachePlan, ResponseCache
from lockgate.guard.checks import Guard, StreamGuard
from lockgate.guard.text import Found, Redactions
from lockgate.reply import StreamReply
from lockgate.usage.reported import hide_usage

__all__ = ["Finishing"]

Form = Literal["openai", "anthropic"]


class Finishing:
    """One request's answer steps; built only when a guard, the cache or hiding usage applies."""

    __slots__ = ("_cache", "_form", "_found", "_guard", "_hide", "_plan", "_redactions")

    def __init__(
        self,
        form: Form,
        guard: Guard | None,
        redactions: Redactions | None,
        found: Found,
        cache: ResponseCache | None,
        plan: CachePlan | None,
        hide: bool,
    ) -> None:
        self._form = form
        self._guard = guard if guard is not None and guard.output_rules else None
        self._redactions = redactions
        self._found = found
        self._cache = cache
        self._plan = plan if plan is not None and plan.store else None
        self._hide = hide

    def json(self, body: bytes) -> bytes:
        if self._guard is not None:
            body = self._guard.check_answer(body, self._form, self._found)
        if self._plan is not None and self._cache is not None:
            self._cache.keep(self._plan, body)
        return self.restored(body)

    def restored(self, body: bytes) -> bytes:
        if self._redactions is not None:
            return self._redactions.restore_json(body)
        return body

    def hit(self, body: bytes, stream: bool, include_usage: bool) -> tuple[bytes, list[bytes]]:
        """A kept answer as this caller gets it: (JSON body, or the events replaying it)."""
        if self._guard is not None:  # rules may have changed since it was kept
            body = self._guard.check_answer(body, self._form, self._found)
        if not stream:
            return self.restored(body), []
        events = (
            openai_stream(body, include_usage) if self._form == "openai" else anthropic_stream(body)
        )
        if self._redactions is None:
            return b"", events
        restore = StreamGuard(self._form, (), self._redactions, self._found)
        return b"", [restore.feed(event) for event in events]

    def stream(self, reply: StreamReply) -> StreamReply:
        assembler = self._assembler()
        step = self._stream_step(assembler)
        if step is None:
            return reply
        try:
            first = [block for block in map(step, reply.first) if block]
        except BaseException:
            reply.close()
            raise
        return StreamReply(first, self._events(reply, step, assembler), reply.close, reply.headers)

    async def _events(
        self,
        reply: StreamReply,
        step: Callable[[bytes], bytes],
        assembler: OpenAIStreamAssembler | AnthropicStreamAssembler | None,
    ) -> AsyncIterator[bytes]:
        async for block in reply.events:
            block = step(block)
            if block:
                yield block
        if assembler is not None and self._plan is not None and self._cache is not None:
            body = assembler.result()
            if body is not None:
                self._cache.keep(self._plan, body)

    def _assembler(self) -> OpenAIStreamAssembler | AnthropicStreamAssembler | None:
        if self._plan is None:
            return None
        return OpenAIStreamAssembler() if self._form == "openai" else AnthropicStreamAssembler()

    def _stream_step(
        self, assembler: OpenAIStreamAssembler | AnthropicStreamAssembler | None
    ) -> Callable[[bytes], bytes] | None:
        output = (
            StreamGuard(self._form, self._guard.output_rules, None, self._found)
            if self._guard is not None
            else None
        )
        restore = (
            StreamGuard(self._form, (), self._redactions, self._found)
            if self._redactions is not None
            else None
        )
        hide = self._hide
        if output is None and assembler is None and restore is None and not hide:
            return None

        def step(block: bytes) -> bytes:
            if output is not None:
                block = output.feed(block)
            if assembler is not None:
                assembler.feed(block)
            if hide and b'"usage"' in block:
                block = hide_usage(block)
            if restore is not None and block:
                block = restore.feed(block)
            return block

        return step
