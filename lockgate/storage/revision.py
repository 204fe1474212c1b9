"""The change counter: bumped with every key or team change, polled by every worker.

A worker keeps keys and teams in memory and reloads them when the counter moves; reading one
integer every half second is far cheaper than reloading every key. Key and team writes bump it
here, through SQLAlchemy; `Database` reads (and bumps) it on the driver.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from lockgate.storage.tables import RevisionRow

__all__ = ["ROW_ID", "bump_revision"]

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
