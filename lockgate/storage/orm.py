"""The repositories that go through SQLAlchemy: key and team writes, and usage reports.

They serve the admin API and the CLI, not requests, so `Database` builds them (and imports
SQLAlchemy) on first use; a serving worker that never needs them never loads it.
"""

from __future__ import annotations

from lockgate.storage.drivers import Driver
from lockgate.storage.engine import Transactions, create_engine
from lockgate.storage.keys import KeyStore
from lockgate.storage.teams import TeamStore
from lockgate.storage.urls import DatabaseUrl
from lockgate.storage.usage_report import UsageReport

__all__ = ["OrmRepositories"]


class OrmRepositories:
    """`keys`, `teams` and `usage_report` on one SQLAlchemy engine (connected on first use)."""

    __slots__ = ("_engine", "keys", "teams", "usage_report")

    def __init__(self, driver: Driver, target: DatabaseUrl) -> None:
        self._engine = create_engine(target)
        # SQLite: SQLAlchemy's writes take turns with the driver's on the same lock.
        transactions = Transactions(self._engine, target, driver.write_turn)
        self.keys = KeyStore(driver, transactions)
        self.teams = TeamStore(driver, transactions)
        self.usage_report = UsageReport(transactions)

    async def close(self) -> None:
        await self._engine.dispose()
