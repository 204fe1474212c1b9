"""The change counter: bumped with every key or team change, polled by every worker.

A worker keeps keys and teams in memory and reloads them when the counter moves; reading one
integer every half second is far cheaper than reloading every key.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lockgate.storage.tables import RevisionRow

__all__ = ["bump_revision", "read_revision"]

ROW_ID = 1


async def bump_revision(session: AsyncSession) -> int:
    """Add one to the counter inside the caller's transaction; the new value."""
    result = await session.execute(
        update(RevisionRow)
        .where(RevisionRow.id == ROW_ID)
        .values(value=RevisionRow.value + 1)
        .returning(RevisionRow.value)
        .execution_options(synchronize_session=False)
    )
    return int(result.scalar_one())


async def read_revision(session: AsyncSession) -> int:
    value = await session.scalar(select(RevisionRow.value).where(RevisionRow.id == ROW_ID))
    return int(value or 0)
