"""Faults applied before any response byte is sent (latency, reset, hang, status)."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from lockgate.simulate.connection import (
    DISCONNECT_POLL_S,
    ConnectionClosed,
    reset_connection,
    sleep_while_connected,
    wait_for_disconnect,
)
from lockgate.simulate.directives import NO_DIRECTIVES, Directives
from lockgate.simulate.errors import simulated_error
from lockgate.simulate.state import SimulatorState


async def apply_pre_response_faults(
    request: web.BaseRequest, directives: Directives, state: SimulatorState, model: str
) -> None:
    """Sleep, drop, hang or raise an :class:`ApiError` as the directives ask."""
    latency_ms = directives.latency_ms
    if latency_ms is None:
        latency_ms = state.settings.latency_ms
    if latency_ms > 0:
        if latency_ms > DISCONNECT_POLL_S * 1000:
            # Long waits notice a departed client even without handler cancellation.
            await sleep_while_connected(request, latency_ms / 1000)
        else:
            await asyncio.sleep(latency_ms / 1000)
    if directives is NO_DIRECTIVES:
        return
    if directives.reset:
        reset_connection(request)
        raise ConnectionClosed(by_client=False)
    if directives.hang:
        await wait_for_disconnect(request)
    status = _error_status(directives, state, model)
    if status is not None:
        raise simulated_error(status, model, directives.retry_after)


def scripted(directives: Directives, state: SimulatorState, model: str) -> Directives:
    """`directives` without `content` once `content_times` requests (per `key`) had it."""
    if directives.content_times is None or directives.content is None:
        return directives
    key = f"content:{directives.key if directives.key is not None else model}"
    if state.failures.should_fail(key, directives.content_times):
        return directives
    return dataclasses.replace(directives, content=None)


def _error_status(directives: Directives, state: SimulatorState, model: str) -> int | None:
    """``status``, unless ``fail_times`` says this request (per ``key``) should succeed."""
    if directives.fail_times is None:
        return directives.status
    key = directives.key if directives.key is not None else model
    if not state.failures.should_fail(key, directives.fail_times):
        return None
    return directives.status or 500
