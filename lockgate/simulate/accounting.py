"""Per-request bookkeeping shared by every wire format the simulator speaks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from lockgate.simulate.connection import ConnectionClosed
from lockgate.simulate.directives import DirectiveError
from lockgate.simulate.errors import ApiError
from lockgate.simulate.stats import SimulatorStats

__all__ = ["CLOSED_STATUS", "counted"]

CLOSED_STATUS = 499
"""Recorded for a connection that closed before an answer; it never reaches anyone."""


async def counted(
    stats: SimulatorStats,
    serve: Awaitable[web.StreamResponse],
    api_error: Callable[[ApiError], web.StreamResponse],
    directive_error: Callable[[DirectiveError], web.StreamResponse],
) -> web.StreamResponse:
    """Serve one request, counting it, its status, and whether its client went away.

    Failures are rendered in the request's wire format by `api_error` and `directive_error`.
    """
    stats.total_requests += 1
    stats.in_flight += 1
    try:
        response = await serve
    except ApiError as error:
        response = api_error(error)
    except DirectiveError as error:
        response = directive_error(error)
    except ConnectionClosed as closed:
        if closed.by_client:
            stats.cancelled += 1
        # Never reaches anyone: aiohttp finds the transport closed and drops it.
        return web.Response(status=CLOSED_STATUS)
    except ConnectionError:  # a write found the client gone
        stats.cancelled += 1
        return web.Response(status=CLOSED_STATUS)
    except asyncio.CancelledError:  # handler_cancellation: the client disconnected
        stats.cancelled += 1
        raise
    finally:
        stats.in_flight -= 1
    stats.record_status(response.status)
    return response
