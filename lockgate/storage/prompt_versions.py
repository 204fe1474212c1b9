"""Which prompt versions served traffic, and the SHA-256 of their file when they first did.

A published prompt version must not change. The gateway records a version's hash the first
time it serves a request, and warns when a later load of the prompts folder finds a different
file under the same version. Only the first hash counts, so a write is
`INSERT ... ON CONFLICT (name, version) DO NOTHING`: workers recording the same version at once,
or again after a restart, never fail and never replace it. A batch's rows go in one transaction,
in a fixed order, so two concurrent batches cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from lockgate.storage.drivers import Driver
from lockgate.storage.errors import InvalidRecord

__all__ = ["PromptVersionStore"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME_MAX = 128
_VERSION_MAX = 64
"""The lengths of `PromptVersionRow.name` and `.version`."""

_INSERT_NEW = (
    "INSERT INTO prompt_versions (name, version, sha256, first_served_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (name, version) DO NOTHING"
)


class PromptVersionStore:
    """The `prompt_versions` table."""

    __slots__ = ("_driver",)

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def record_served(self, entries: Sequence[tuple[str, str, str]]) -> None:
        """Store each `(name, version, sha256)` not yet known, with `first_served_at` now.

        A known `(name, version)` keeps its first hash (so does the first of duplicates within
        `entries`). All in one transaction; `InvalidRecord`, before anything is written, for a
        hash that is not 64 hex digits or a name or version too long for the table.
        """
        first: dict[tuple[str, str], str] = {}
        for name, version, sha256 in entries:
            first.setdefault((name, version), _checked(name, version, sha256))
        if not first:
            return
        now = self._driver.encode_time(datetime.now(UTC))
        params = [(name, version, sha256, now) for (name, version), sha256 in sorted(first.items())]
        await self._driver.write([(_INSERT_NEW, params)])

    async def served_hashes(self) -> dict[tuple[str, str], str]:
        """`(name, version) -> sha256` of every version that served traffic."""
        rows = await self._driver.fetch("SELECT name, version, sha256 FROM prompt_versions")
        return {(name, version): sha256 for name, version, sha256 in rows}


def _checked(name: str, version: str, sha256: str) -> str:
    """`sha256` in lower case, once the row is known to fit the table.

    PostgreSQL would refuse an over-long name mid-batch, and SQLite would store it; a CHAR(64)
    column would pad a short hash. Checked up front, both databases behave the same.
    """
    digest = sha256.lower()
    if not _SHA256.fullmatch(digest):
        raise InvalidRecord(f"prompt {name}@{version}: sha256 must be 64 hex digits")
    if not name or len(name) > _NAME_MAX:
        raise InvalidRecord(f"prompt name must be 1 to {_NAME_MAX} characters: {name[:200]!r}")
    if not version or len(version) > _VERSION_MAX:
        raise InvalidRecord(
            f"prompt {name} version must be 1 to {_VERSION_MAX} characters: {version[:200]!r}"
        )
    return digest
