"""A fake GitLab REST API on loopback, for the endpoints `lockgate.gitlab.api` calls.

Answers follow the JSON shapes of GitLab's REST API docs (merge requests, MR diffs and commits,
notes, discussions with `position`, repository compare, branches, files, commits with actions,
issues, projects by id or URL-encoded path), with GitLab's pagination headers (`x-page`,
`x-per-page`, `x-next-page`, `x-total`, `link` — python-gitlab follows `link` rel="next" for
`get_all=True`) and GitLab's error bodies. State lives in memory in a `FakeGitLab`, which also
records every request so tests can assert on what was sent.

Auth works like GitLab's: `PRIVATE-TOKEN` or `Authorization: Bearer` for access tokens,
`JOB-TOKEN` for job tokens; an unknown token gets 401, a token limited to other projects 403,
a `read_api` token 403 on writes. Diff discussion positions are validated as GitLab does in
essence: the SHAs must be the MR's `diff_refs`, the paths a changed file, and the lines a line of
its hunks — an added line by `new_line` alone, a removed line by `old_line` alone, an unchanged
line by both — else 400 with GitLab's `line_code` message.

Use the `fake_gitlab` fixture (served on the test's event loop; call the sync client through
`asyncio.to_thread`) or `threaded_fake_gitlab` (served from its own thread: for sync tests and for
code that runs its own event loop). Both come with `DEFAULT_TOKEN` registered for `lockgate-bot`.
Import the fixture you use into the test module: `from tests.gitlab.fake_gitlab import fake_gitlab`.
The fake's parts are in `tests.gitlab.fake`: its state, GitLab's JSON shapes, its routes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from tests.gitlab.fake.routes import create_fake_gitlab_app
from tests.gitlab.fake.state import (
    DEFAULT_TOKEN,
    DEFAULT_USER,
    INVALID_POSITION,
    FakeGitLab,
    FakeMergeRequest,
    RecordedCall,
)

__all__ = [
    "DEFAULT_TOKEN",
    "INVALID_POSITION",
    "FakeGitLab",
    "FakeMergeRequest",
    "RecordedCall",
    "RunningFakeGitLab",
    "ThreadedFakeGitLab",
    "fake_gitlab",
    "start_fake_gitlab",
    "threaded_fake_gitlab",
]

# --- serving ------------------------------------------------------------------------------------


class RunningFakeGitLab:
    """A fake GitLab serving on the current event loop (see :func:`start_fake_gitlab`)."""

    def __init__(self, state: FakeGitLab, runner: web.AppRunner, port: int) -> None:
        self.state = state
        self._runner = runner
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningFakeGitLab:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def start_fake_gitlab(state: FakeGitLab | None = None, port: int = 0) -> RunningFakeGitLab:
    """Serve `state` (a new, empty one by default) on 127.0.0.1; `port=0` picks a free port."""
    state = state if state is not None else FakeGitLab()
    runner = web.AppRunner(create_fake_gitlab_app(state), access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return RunningFakeGitLab(state, runner, site.port)


class ThreadedFakeGitLab:
    """A fake GitLab serving from its own thread and event loop, for sync callers."""

    def __init__(self, state: FakeGitLab | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(start_fake_gitlab(state), self._loop)
        self._running = future.result(timeout=10)
        self.state = self._running.state
        self.url = self._running.url

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._running.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> ThreadedFakeGitLab:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@pytest.fixture
async def fake_gitlab() -> AsyncIterator[RunningFakeGitLab]:
    """A fresh fake GitLab on the test's loop, `DEFAULT_TOKEN` accepted for `lockgate-bot`."""
    async with await start_fake_gitlab() as running:
        running.state.set_token(DEFAULT_TOKEN, DEFAULT_USER)
        yield running


@pytest.fixture
def threaded_fake_gitlab() -> Iterator[ThreadedFakeGitLab]:
    """A fresh fake GitLab in its own thread, `DEFAULT_TOKEN` accepted for `lockgate-bot`."""
    with ThreadedFakeGitLab() as server:
        server.state.set_token(DEFAULT_TOKEN, DEFAULT_USER)
        yield server
