"""A published prompt version must not change: remember what served traffic, warn on changes.

The first request a version serves (per process) stores the SHA-256 of its file in the
database; loading the prompts folder compares every file with those hashes. A changed file is
a warning, not an error: refusing to start over it would turn a mistake in a prompt into an
outage. The fix is a new version number.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry (Jinja2, jsonschema) loads only with a prompts folder
    from lockgate.prompts.registry import PromptRegistry, PromptVersion

__all__ = ["ServedVersions", "changed_after_serving"]

log = logging.getLogger("lockgate.prompts")

Record = Callable[[Sequence[tuple[str, str, str]]], Awaitable[None]]


class ServedVersions:
    def __init__(self, record: Record) -> None:
        self._record = record
        self._seen: set[tuple[str, str, str]] = set()
        self._writes: set[asyncio.Task[None]] = set()

    def served(self, version: PromptVersion) -> None:
        entry = (version.name, version.version, version.sha256)
        if entry in self._seen:
            return
        self._seen.add(entry)
        task = asyncio.get_running_loop().create_task(self._write(entry))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=5)

    async def _write(self, entry: tuple[str, str, str]) -> None:
        try:
            await self._record([entry])
        except Exception as error:
            self._seen.discard(entry)  # tried again on its next request
            log.warning("could not record prompt %s@%s as served: %s", entry[0], entry[1], error)


def changed_after_serving(
    registry: PromptRegistry, served: Mapping[tuple[str, str], str]
) -> list[str]:
    """A warning for each version whose file differs from the one that served traffic."""
    warnings = []
    for name in registry.names():
        for version in registry.versions(name):
            known = served.get((name, version.version))
            if known is not None and known != version.sha256:
                warnings.append(
                    f"prompt {name}@{version.version} changed after it served traffic "
                    f"({version.path}): a published version must not change; give the change "
                    "a new version number"
                )
    return warnings
