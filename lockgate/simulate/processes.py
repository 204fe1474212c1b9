"""Blocking serve loop for the CLI: one process, or several sharing a port via SO_REUSEPORT."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import FrameType

from aiohttp import web

from lockgate.simulate.app import create_simulator_app
from lockgate.simulate.settings import SimulatorSettings
from lockgate.simulate.sockets import bind_socket, bound_port, listen_socket

SHUTDOWN_TIMEOUT_S = 1.0
WORKER_START_TIMEOUT_S = 30.0
# Exit codes of workers stopped on purpose (Ctrl+C / terminate()).
_QUIET_EXITS = frozenset({0, -signal.SIGINT, -signal.SIGTERM})


LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def event_loop_factory() -> LoopFactory:
    """uvloop when installed (much faster for the benchmark), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def _serve(app: web.Application, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
    """Serve ``app`` on an already listening socket until SIGINT/SIGTERM."""
    web.run_app(
        app,
        sock=sock,
        print=None,
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        loop=loop,
    )


def _worker_main(
    settings: SimulatorSettings, host: str, port: int, ready: Event, loop_factory: LoopFactory
) -> None:
    try:
        loop = loop_factory()
        app = create_simulator_app(settings)
        sock = listen_socket(host, port, reuse_port=True)
        ready.set()
        _serve(app, sock, loop)
    except KeyboardInterrupt:
        pass  # Ctrl+C while still starting up


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _stop_workers(processes: list[BaseProcess], grace_s: float) -> None:
    """Let workers finish a shutdown they already started, then terminate the rest.

    Terminating a worker that is mid graceful shutdown (after a Ctrl+C that
    reached the whole process group) would interrupt it and spill a traceback.
    """
    deadline = time.monotonic() + grace_s
    for process in processes:
        if process.pid is not None:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        if process.pid is not None:
            process.join(timeout=SHUTDOWN_TIMEOUT_S + 4)


def _serve_workers(
    settings: SimulatorSettings,
    host: str,
    port: int,
    workers: int,
    on_listening: Callable[[int], None] | None,
) -> None:
    # The parent holds a bound but never-listening socket: it fixes the port
    # (port 0 picks one) without taking any connections itself.
    reserve = bind_socket(host, port, reuse_port=True)
    port = bound_port(reserve)
    # fork is cheap and safe here (no loop runs yet in the parent); elsewhere spawn.
    context = (
        multiprocessing.get_context("fork")
        if sys.platform == "linux"
        else multiprocessing.get_context("spawn")
    )
    # Resolved before forking so no worker pays for (or is interrupted in) the import.
    loop_factory = event_loop_factory()
    events = [context.Event() for _ in range(workers)]
    processes: list[BaseProcess] = [
        context.Process(
            target=_worker_main,
            args=(settings, host, port, event, loop_factory),
            daemon=True,
            name=f"sim-{i}",
        )
        for i, event in enumerate(events)
    ]
    previous = signal.signal(signal.SIGTERM, _raise_system_exit)
    # Whether the workers are already shutting down on their own (Ctrl+C, or one exited).
    winding_down = False
    try:
        for process in processes:
            process.start()
        for process, event in zip(processes, events, strict=True):
            if not event.wait(WORKER_START_TIMEOUT_S) or not process.is_alive():
                raise RuntimeError(f"simulator worker {process.name} failed to start")
        if on_listening is not None:
            on_listening(port)
        wait([process.sentinel for process in processes])
        winding_down = True
        failed = [p for p in processes if p.exitcode not in _QUIET_EXITS]
        if failed:
            raise RuntimeError(f"simulator worker exited with code {failed[0].exitcode}")
    except KeyboardInterrupt:
        winding_down = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_workers(processes, SHUTDOWN_TIMEOUT_S + 1 if winding_down else 0.0)
        reserve.close()


def run_simulator(
    settings: SimulatorSettings,
    host: str = "127.0.0.1",
    port: int = 8090,
    workers: int = 1,
    *,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Serve until interrupted. ``on_listening`` gets the bound port once accepting."""
    if workers < 1:
        raise ValueError("workers must be >= 1")
    try:
        if workers == 1:
            loop = event_loop_factory()()
            app = create_simulator_app(settings)
            sock = listen_socket(host, port, reuse_port=False)
            if on_listening is not None:
                on_listening(bound_port(sock))
            _serve(app, sock, loop)
        else:
            _serve_workers(settings, host, port, workers, on_listening)
    except KeyboardInterrupt:
        pass
