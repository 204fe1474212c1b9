"""The request path (DESIGN §2) as a short sequence of stages.

identify -> parse -> admit -> guard -> cache -> route -> translate + call -> guard -> account.
Identify runs in the endpoints (before the body is read). Here: parse; the input guardrails
(before admission, so a blocked request costs nothing); admit (allowlists, rate limits, budget
reservation); the cache lookup (exact, then semantic); route (retries, fallbacks, cooldowns) and
call; the answer's way back (`finishing.py`: output guardrails, keeping it in the cache,
restoring placeholders); and the usage of each request (tokens, cost, timings) put on its
`UsageRecord`, which the endpoint's accounting writes to the ledger, the metrics, the access log
and the trace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from lockgate.admission import FREE, Admission, Ticket
from lockgate.auth.policy import Principal
from lockgate.cache.responses import CachePlan, Hit, ResponseCache
from lockgate.clients.anthropic import (
    MessageStreamTranslator,
    NativeStreamWatch,
    native_has_content,
    to_canonical,
    to_message,
)
from lockgate.clients.anthropic.schema import MessagesRequest
from lockgate.config.models import GatewayConfig, Price
from lockgate.errors import BadRequest, GatewayError, UpstreamServerError, UpstreamTimeout
from lockgate.finishing import Finishing, Form
from lockgate.guard.checks import Guard
from lockgate.guard.policies import Guards
from lockgate.guard.text import Found, Redactions
from lockgate.options import RequestOptions
from lockgate.providers.base import (
    LocalEmbeddings,
    NativeMessages,
    StreamParser,
    UpstreamRequest,
)
from lockgate.redact import SecretScrubber, config_secrets
from lockgate.reply import Headers, JSONReply, StreamReply
from lockgate.routing.attempts import Attempted, AttemptRunner
from lockgate.routing.facts import RequestFacts
from lockgate.routing.health import HealthBook
from lockgate.routing.router import Router, Target
from lockgate.schemas.chat import ChatCompletionRequest
from lockgate.schemas.decode import decode_object, validate
from lockgate.schemas.embeddings import EmbeddingsRequest
from lockgate.settlement import (
    add_cost_header,
    metered_stream,
    reply_from_cache,
    settle_usage,
)
from lockgate.transport.client import UpstreamClient, UpstreamStream
from lockgate.transport.first_content import carries_content, until_content
from lockgate.transport.propagation import PROPAGATION
from lockgate.usage.record import UsageRecord
from lockgate.usage.reported import Format, StreamMeter, Usage, usage_from_body

if TYPE_CHECKING:
    from lockgate.telemetry.tracing import RequestTrace

__all__ = ["Gateway", "JSONReply", "StreamReply"]

R = TypeVar("R", bound="JSONReply | StreamReply")


class Gateway:
    """Serves canonical (OpenAI-shaped) requests through the configured targets."""

    def __init__(
        self,
        config: GatewayConfig,
        router: Router,
        health: HealthBook,
        client: UpstreamClient,
        admission: Admission,
        cache: ResponseCache | None = None,
    ) -> None:
        self._router = router
        self._cache = cache
        self._guards = Guards(config)
        self._admission = admission
        self._health = health
        self._client = client
        self._runner = AttemptRunner(router, config.routing)
        self._max_messages = config.server.max_messages
        self._idle_timeout_s = config.routing.stream_idle_timeout_s
        self._deadline_s = config.routing.deadline_s
        self._scrubber = SecretScrubber(config_secrets(config))
        self._log_bodies = config.observability.log_bodies and config.observability.access_log

    async def chat(
        self, body: bytes, options: RequestOptions, principal: Principal, record: UsageRecord
    ) -> JSONReply | StreamReply:
        if self._log_bodies:
            record.request_body = body
        raw = decode_object(body)
        request = validate(raw, ChatCompletionRequest)
        self._check_messages(request)
        guard, redactions = self._guard_input(principal, raw, record)
        facts = RequestFacts(request, options.tags)
        _describe(record, request.model, facts.stream, options.tags)
        ticket = await self._admit(principal, request, facts, record)
        hide = facts.stream and not _asked_for_usage(raw)
        plan = self._plan(principal, "openai", raw, request.model, options)
        finishing = self._finishing("openai", guard, redactions, plan, hide, record)
        if plan is not None and plan.lookup:
            hit = await self._lookup(plan)
            if hit is not None:
                assert finishing is not None
                return reply_from_cache(hit, finishing, facts.stream, not hide, ticket, record)
        deadline = self._deadline()

        async def attempt(target: Target, timeout_s: float) -> JSONReply | StreamReply:
            return await self._chat_attempt(target, raw, facts.stream, timeout_s, deadline)

        return await self._run(
            request.model, facts, attempt, deadline, ticket, record, "openai", finishing, plan
        )

    async def messages(
        self, body: bytes, options: RequestOptions, principal: Principal, record: UsageRecord
    ) -> JSONReply | StreamReply:
        """Anthropic Messages in and out: natively on targets that speak it, else translated.

        The reply's bytes are Anthropic's (a message, or its events) either way; routing,
        retries and fallbacks are the same as for `chat`, and may mix both kinds of target.
        """
        if self._log_bodies:
            record.request_body = body
        raw = decode_object(body)
        # Guarded before parsing: the translation reads the parsed form.
        guard, redactions = self._guard_input(principal, raw, record)
        translated = to_canonical(validate(raw, MessagesRequest), raw)
        request = validate(translated.body, ChatCompletionRequest)
        self._check_messages(request)
        facts = RequestFacts(request, options.tags)
        _describe(record, request.model, facts.stream, options.tags)
        ticket = await self._admit(principal, request, facts, record)
        plan = self._plan(principal, "anthropic", raw, request.model, options)
        finishing = self._finishing("anthropic", guard, redactions, plan, False, record)
        if plan is not None and plan.lookup:
            hit = await self._lookup(plan)
            if hit is not None:
                assert finishing is not None
                return reply_from_cache(hit, finishing, facts.stream, True, ticket, record)
        deadline = self._deadline()

        async def attempt(target: Target, timeout_s: float) -> JSONReply | StreamReply:
            adapter = target.adapter
            if isinstance(adapter, NativeMessages):
                upstream = adapter.native_messages_request(raw, target.model)
                if upstream is not None:
                    return await self._native_attempt(target, upstream, facts, timeout_s, deadline)
            translated.check(adapter.name)
            reply = await self._chat_attempt(
                target, translated.body, facts.stream, timeout_s, deadline
            )
            if isinstance(reply, JSONReply):
                return JSONReply(to_message(reply.body, adapter.name))
            return _as_message_stream(reply, MessageStreamTranslator(target.model, adapter.name))

        return await self._run(
            request.model, facts, attempt, deadline, ticket, record, "anthropic", finishing, plan
        )

    async def embeddings(self, body: bytes, principal: Principal, record: UsageRecord) -> JSONReply:
        if self._log_bodies:
            record.request_body = body
        raw = decode_object(body)
        request = validate(raw, EmbeddingsRequest)
        self._guard_input(principal, raw, record)
        record.model = request.model
        ticket = FREE
        if principal.policy.limited:
            # Embedding inputs are text or token ids; a quarter of the body bounds the tokens.
            input_tokens = len(body) // 4
            price = self._price_ceiling(request.model, None)
            ticket = await self._admission.admit(
                principal, request.model, input_tokens, None, price
            )
        elif not principal.policy.allows(request.model):
            await self._admission.admit(principal, request.model, 0, None, None)

        async def attempt(target: Target, timeout_s: float) -> JSONReply:
            return await self._embeddings_attempt(target, raw, timeout_s)

        done = await self._routed(request.model, None, attempt, self._deadline(), ticket, record)
        reply = done.result
        usage = usage_from_body(reply.body, "openai") or Usage(len(body) // 4, 0, False)
        settle_usage(record, ticket, usage, done.target.price)
        if self._log_bodies:
            record.response_body = reply.body
        add_cost_header(reply, record, done.target.price)
        return reply

    async def _admit(
        self,
        principal: Principal,
        request: ChatCompletionRequest,
        facts: RequestFacts,
        record: UsageRecord,
    ) -> Ticket:
        policy = principal.policy
        if not policy.limited and policy.allows(request.model):
            return FREE
        price = self._price_ceiling(request.model, facts) if policy.budgets else None
        max_output = request.max_completion_tokens or request.max_tokens
        start = time.perf_counter()
        try:
            return await self._admission.admit(
                principal, request.model, facts.input_tokens, max_output, price
            )
        finally:
            if record.trace is not None:
                record.trace.stage("admit", start, time.perf_counter())

    def _guard_input(
        self, principal: Principal, raw: dict[str, Any], record: UsageRecord
    ) -> tuple[Guard | None, Redactions | None]:
        """The caller's guardrails, and the placeholders its input rules left (to restore)."""
        guard = self._guards.for_principal(principal)
        if guard is None:
            return None, None
        return guard, guard.check_request(raw, Found(record.request_id))

    def _plan(
        self,
        principal: Principal,
        form: Form,
        raw: Mapping[str, Any],
        model: str,
        options: RequestOptions,
    ) -> CachePlan | None:
        if self._cache is None:
            return None
        return self._cache.plan(principal, form, raw, model, options)

    async def _lookup(self, plan: CachePlan) -> Hit | None:
        assert self._cache is not None
        return await self._cache.get(plan, self._embed_text)

    async def _embed_text(self, model: str, text: str) -> list[float]:
        """`text`'s vector from the embeddings model `model` (for the semantic cache).

        Routed like a client's embeddings request, but not accounted: it serves the cache.
        """
        raw: dict[str, Any] = {"model": model, "input": [text]}

        async def attempt(target: Target, timeout_s: float) -> JSONReply:
            return await self._embeddings_attempt(target, raw, timeout_s)

        done = await self._runner.run(model, None, attempt, self._deadline())
        vector = orjson.loads(done.result.body)["data"][0]["embedding"]
        if not isinstance(vector, list):
            raise TypeError("the embeddings model did not answer with a list of floats")
        return vector

    def _finishing(
        self,
        form: Form,
        guard: Guard | None,
        redactions: Redactions | None,
        plan: CachePlan | None,
        hide: bool,
        record: UsageRecord,
    ) -> Finishing | None:
        if guard is None and plan is None and not hide:
            return None
        found = Found(record.request_id)
        return Finishing(form, guard, redactions, found, self._cache, plan, hide)

    def _price_ceiling(self, model: str, facts: RequestFacts | None) -> Price | None:
        return self._router.price_ceiling(self._router.resolve(model, facts))

    async def _routed(
        self,
        model: str,
        facts: RequestFacts | None,
        attempt: Callable[[Target, float], Awaitable[R]],
        deadline: float | None,
        ticket: Ticket,
        record: UsageRecord,
    ) -> Attempted[R]:
        """The attempt loop; a failure releases the admission and carries the limit headers."""
        if record.trace is not None:
            attempt = _traced(attempt, record.trace)
        start = time.perf_counter()
        try:
            done = await self._runner.run(model, facts, attempt, deadline)
        except GatewayError as error:
            record.upstream_s = time.perf_counter() - start
            record.attempts = error.attempts
            ticket.release()
            _add_limit_headers(error, ticket)
            self._scrubber.scrub_error(error)
            raise
        except BaseException:
            ticket.release()
            raise
        record.ready = time.perf_counter()
        record.upstream_s = record.ready - start
        target = done.target
        record.provider, record.target_model = target.adapter.name, target.model
        record.attempts = done.attempts
        done.result.headers += _target_headers(done.target, done.attempts)
        done.result.headers += ticket.headers
        return done

    async def _run(
        self,
        model: str,
        facts: RequestFacts,
        attempt: Callable[[Target, float], Awaitable[JSONReply | StreamReply]],
        deadline: float | None,
        ticket: Ticket,
        record: UsageRecord,
        form: Format,
        finishing: Finishing | None,
        plan: CachePlan | None,
    ) -> JSONReply | StreamReply:
        """Route and call; then account for the usage, now or when the stream ends."""
        done = await self._routed(model, facts, attempt, deadline, ticket, record)
        reply = done.result
        price = done.target.price
        if plan is not None:
            reply.headers.append((b"x-lockgate-cache", plan.header))
        if isinstance(reply, StreamReply):
            meter = StreamMeter(form)
            metered = metered_stream(reply, meter, ticket, price, facts.input_tokens, record)
            return metered if finishing is None else finishing.stream(metered)
        usage = usage_from_body(reply.body, form) or Usage(facts.input_tokens, 0, False)
        settle_usage(record, ticket, usage, price)
        if self._log_bodies:
            record.response_body = reply.body
        add_cost_header(reply, record, price)
        if finishing is not None:
            reply.body = finishing.json(reply.body)
        return reply

    def target_health(self) -> dict[str, dict[str, object]]:
        return self._health.snapshot()

    def _deadline(self) -> float | None:
        if self._deadline_s is None:
            return None
        return asyncio.get_running_loop().time() + self._deadline_s

    def _check_messages(self, request: ChatCompletionRequest) -> None:
        if not request.messages:
            raise BadRequest("'messages' must hold at least one message", param="messages")
        if len(request.messages) > self._max_messages:
            raise BadRequest(
                f"'messages' holds {len(request.messages)} messages; the limit is "
                f"{self._max_messages}",
                param="messages",
            )

    async def _embeddings_attempt(
        self, target: Target, raw: dict[str, Any], timeout_s: float
    ) -> JSONReply:
        adapter = target.adapter
        sent = dict(raw)
        if isinstance(adapter, LocalEmbeddings):
            return JSONReply(await adapter.local_embeddings(sent, target.model))
        upstream = adapter.embeddings_request(sent, target.model)
        response = await self._client.send(upstream, adapter.name, timeout_s)
        if response.status >= 400:
            raise adapter.error(response.status, response.headers, response.body)
        return JSONReply(adapter.embeddings_response(response.body, sent))

    async def _chat_attempt(
        self,
        target: Target,
        raw: dict[str, Any],
        stream: bool,
        timeout_s: float,
        deadline: float | None,
    ) -> JSONReply | StreamReply:
        """One try of a canonical request on `target`; the reply is canonical too."""
        adapter = target.adapter
        sent = dict(raw)
        if stream:
            # Usage is asked for on every stream (the ledger needs it); `hide_usage` takes it
            # out of what a client that did not ask receives.
            options = sent.get("stream_options")
            sent["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        upstream = adapter.chat_request(sent, target.model)
        if stream:
            parser = adapter.stream_parser(sent)
            return await self._open_stream(target, parser, upstream, timeout_s, deadline)
        response = await self._client.send(upstream, adapter.name, timeout_s)
        if response.status >= 400:
            raise adapter.error(response.status, response.headers, response.body)
        return JSONReply(adapter.chat_response(response.body, sent))

    async def _native_attempt(
        self,
        target: Target,
        upstream: UpstreamRequest,
        facts: RequestFacts,
        timeout_s: float,
        deadline: float | None,
    ) -> JSONReply | StreamReply:
        """One try of an Anthropic Messages body passed through: the answer's bytes are relayed."""
        adapter = target.adapter
        if facts.stream:
            watch = NativeStreamWatch(adapter.name, adapter.error)
            return await self._open_stream(
                target, watch, upstream, timeout_s, deadline, native_has_content
            )
        response = await self._client.send(upstream, adapter.name, timeout_s)
        if response.status >= 400:
            raise adapter.error(response.status, response.headers, response.body)
        return JSONReply(response.body)

    async def _open_stream(
        self,
        target: Target,
        parser: StreamParser,
        upstream: UpstreamRequest,
        timeout_s: float,
        deadline: float | None,
        has_content: Callable[[bytes], bool] | None = None,
    ) -> StreamReply:
        """Open the stream; hold it until the first content, so earlier failures fall back."""
        adapter = target.adapter
        stream: UpstreamStream | None = None
        try:
            async with asyncio.timeout(timeout_s):
                stream = await self._client.open_stream(
                    upstream, adapter.name, self._idle_timeout_s
                )
                if stream.status >= 400:
                    error_body = await stream.read_error_body()
                    raise adapter.error(stream.status, stream.headers, error_body)
                first = await until_content(
                    stream, parser, adapter.name, has_content or carries_content
                )
        except TimeoutError:
            if stream is not None:
                stream.close()
            raise UpstreamTimeout(
                f"Provider '{adapter.name}' sent no content within {timeout_s:g}s"
            ) from None
        except BaseException:
            if stream is not None:
                stream.close()
            raise
        # The attempt ends here, but the stream keeps the target busy until it closes.
        self._health.hold(target.label)
        close = _CloseOnce(stream, self._health, target.label)
        return StreamReply(first, self._relay(stream, parser, target, deadline, close), close)

    async def _relay(
        self,
        stream: UpstreamStream,
        parser: StreamParser,
        target: Target,
        deadline: float | None,
        close: Callable[[], None],
    ) -> AsyncIterator[bytes]:
        provider = target.adapter.name
        try:
            if parser.failure is not None:
                raise parser.failure
            while True:
                # The deadline bounds each read, never a yield: while the client is being
                # sent to, the timer is not running.
                if deadline is None:
                    chunk = await stream.next_chunk()
                else:
                    chunk = await self._next_chunk_before(stream, deadline)
                if not chunk:
                    break
                events = parser.feed(chunk)
                if events:
                    yield b"".join(events) if len(events) > 1 else events[0]
                if parser.failure is not None:
                    raise parser.failure
            if not parser.complete:
                raise UpstreamServerError(
                    f"Provider '{provider}' ended the stream before it was complete",
                    code="stream_truncated",
                )
        except GatewayError as error:
            self._health.failed_after_start(target.label)
            self._scrubber.scrub_error(error)
            raise
        finally:
            close()

    async def _next_chunk_before(self, stream: UpstreamStream, deadline: float) -> bytes:
        try:
            async with asyncio.timeout_at(deadline):
                return await stream.next_chunk()
        except TimeoutError:
            raise GatewayError(
                f"The request exceeded its deadline of {self._deadline_s:g}s",
                code="deadline_exceeded",
                status=504,
            ) from None


class _CloseOnce:
    """Closes an upstream stream and gives its target's in-flight slot back, once."""

    __slots__ = ("_health", "_label", "_stream")

    def __init__(self, stream: UpstreamStream, health: HealthBook, label: str) -> None:
        self._stream: UpstreamStream | None = stream
        self._health = health
        self._label = label

    def __call__(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
            self._health.release(self._label)


def _as_message_stream(reply: StreamReply, translator: MessageStreamTranslator) -> StreamReply:
    """A canonical stream as Anthropic's events; the translator closes the message at the end."""

    async def events() -> AsyncIterator[bytes]:
        async for block in reply.events:
            translated = translator.feed(block)
            if translated:
                yield translated
        closing = translator.finish()
        if closing:
            yield closing

    try:
        first = translator.feed(b"".join(reply.first))
    except BaseException:
        reply.close()  # the upstream stream is open: release it
        raise
    return StreamReply([first], events(), reply.close)


def _traced(
    attempt: Callable[[Target, float], Awaitable[R]], trace: RequestTrace
) -> Callable[[Target, float], Awaitable[R]]:
    """`attempt` in a CLIENT span whose trace context goes upstream with the call."""

    async def traced(target: Target, timeout_s: float) -> R:
        span = trace.attempt(target.adapter.name, target.model)
        token = PROPAGATION.set(span.headers)
        try:
            result = await attempt(target, timeout_s)
        except GatewayError as error:
            span.end(error.status, error.code)
            raise
        except BaseException:
            span.end(None, "cancelled")
            raise
        finally:
            PROPAGATION.reset(token)
        span.end(200)
        return result

    return traced


def _describe(record: UsageRecord, model: str, stream: bool, tags: Mapping[str, str]) -> None:
    record.model = model
    record.stream = stream
    if tags:
        record.tags = tags


def _asked_for_usage(raw: Mapping[str, Any]) -> bool:
    options = raw.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _add_limit_headers(error: GatewayError, ticket: Ticket) -> None:
    """The caller's rate-limit state goes on every response, failed ones too."""
    if ticket.headers:
        headers = {name.decode(): value.decode() for name, value in ticket.headers}
        error.headers = {**headers, **error.headers}


def _target_headers(target: Target, attempts: int) -> Headers:
    return [
        (b"x-lockgate-model", target.label.encode()),
        (b"x-lockgate-attempts", str(attempts).encode()),
    ]
