"""A request's usage settled: its tokens and cost on its record, its admission ticket settled.

A JSON answer is settled at once (`settle_usage`, `add_cost_header`), a stream when it ends,
however it ends (`metered_stream`), and a cache hit at no cost (`reply_from_cache`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from lockgate.admission import Ticket
from lockgate.cache.responses import Hit
from lockgate.config.models import Price
from lockgate.finishing import Finishing
from lockgate.reply import JSONReply, StreamReply
from lockgate.usage.prices import cost_micros
from lockgate.usage.record import UsageRecord
from lockgate.usage.reported import StreamMeter, Usage

__all__ = ["add_cost_header", "metered_stream", "reply_from_cache", "settle_usage"]

NO_USAGE = Usage(0, 0)


def settle_usage(record: UsageRecord, ticket: Ticket, usage: Usage, price: Price | None) -> None:
    """Put the usage and its cost on the record, and settle the admission with them."""
    record.input_tokens = usage.input_tokens
    record.output_tokens = usage.output_tokens
    record.cached_tokens = usage.cached_tokens
    record.estimated = not usage.reported
    record.cost_micros = cost_micros(
        price, usage.input_tokens, usage.output_tokens, usage.cached_tokens
    )
    ticket.settle(usage, record.cost_micros)


def add_cost_header(reply: JSONReply, record: UsageRecord, price: Price | None) -> None:
    if price is not None:
        cost = f"{record.cost_micros / 1_000_000:.6f}".encode()
        reply.headers.append((b"x-lockgate-cost-usd", cost))


def metered_stream(
    reply: StreamReply,
    meter: StreamMeter,
    ticket: Ticket,
    price: Price | None,
    input_tokens: int,
    record: UsageRecord,
) -> StreamReply:
    """The same stream, watched for usage; it is accounted when the stream ends, however it ends."""
    settled = False

    def settle() -> None:
        nonlocal settled
        if not settled:
            settled = True
            settle_usage(record, ticket, meter.usage(input_tokens), price)

    async def events() -> AsyncIterator[bytes]:
        try:
            async for block in reply.events:
                meter.feed(block)
                yield block
        finally:
            settle()

    def close() -> None:
        reply.close()
        settle()

    for block in reply.first:
        meter.feed_head(block)
    return StreamReply(reply.first, events(), close, reply.headers)


def reply_from_cache(
    hit: Hit,
    finishing: Finishing,
    stream: bool,
    include_usage: bool,
    ticket: Ticket,
    record: UsageRecord,
) -> JSONReply | StreamReply:
    """A kept answer: no upstream call, nothing spent (the ledger says it was a hit)."""
    record.cache_hit = True
    record.ready = time.perf_counter()
    settle_usage(record, ticket, NO_USAGE, None)
    headers = [(b"x-lockgate-cache", b"hit"), (b"x-lockgate-cost-usd", b"0.000000")]
    if hit.similarity is not None:
        headers.append((b"x-lockgate-cache-similarity", f"{hit.similarity:.4f}".encode()))
    headers += ticket.headers
    body, events = finishing.hit(hit.body, stream, include_usage)
    if stream:
        return StreamReply(events, _nothing(), _no_op, headers)
    return JSONReply(body, headers)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield


def _no_op() -> None:
    return None
