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
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from lockgate.storage.engine import Transactions
from lockgate.storage.errors import InvalidRecord
from lockgate.storage.tables import PromptVersionRow
from lockgate.storage.urls import Backend

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

__all__ = ["PromptVersionStore"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME_MAX = 128
_VERSION_MAX = 64
"""The lengths of `PromptVersionRow.name` and `.version`."""


class PromptVersionStore:
    """The `prompt_versions` table."""

    __slots__ = ("_tx",)

    def __init__(self, transactions: Transactions) -> None:
        self._tx = transactions

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
        now = datetime.now(UTC)
        params = [
            {"name": name, "version": version, "sha256": sha256, "first_served_at": now}
            for (name, version), sha256 in sorted(first.items())
        ]
        async with self._tx.write() as session:
            connection = await session.connection()
            await connection.execute(_insert_new(self._tx.backend), params)

    async def served_hashes(self) -> dict[tuple[str, str], str]:
        """`(name, version) -> sha256` of every version that served traffic."""
        query = select(PromptVersionRow.name, PromptVersionRow.version, PromptVersionRow.sha256)
        async with self._tx.read() as session:
            result = await session.execute(query)
            return {(name, version): sha256 for name, version, sha256 in result}


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


def _insert_new(backend: Backend) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT (name, version) DO NOTHING."""
    key = ["name", "version"]
    if backend == "postgresql":
        from sqlalchemy.dialects import postgresql  # ~2 MB: only for PostgreSQL

        return postgresql.insert(PromptVersionRow).on_conflict_do_nothing(index_elements=key)
    return sqlite.insert(PromptVersionRow).on_conflict_do_nothing(index_elements=key)
