"""The gateway's database: keys, teams, budget spend, usage and the change counter workers poll.

SQLite by default, PostgreSQL at scale. The serving path talks to the drivers (aiosqlite,
asyncpg) directly; key and team writes, usage reports and the Alembic migrations shipped in
`migrations/` go through SQLAlchemy, loaded on first use.
"""

from lockgate.storage.database import Database, upgrade
from lockgate.storage.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidRecord,
    NameTaken,
    StorageError,
)
from lockgate.storage.records import StoredKey, StoredTeam
from lockgate.storage.schema_version import SCHEMA_HEAD, Migration
from lockgate.storage.spend import SpendRecord, SpendStore
from lockgate.storage.urls import hide_password

__all__ = [
    "SCHEMA_HEAD",
    "Conflict",
    "Database",
    "DatabaseUnavailable",
    "InvalidRecord",
    "Migration",
    "NameTaken",
    "SpendRecord",
    "SpendStore",
    "StorageError",
    "StoredKey",
    "StoredTeam",
    "hide_password",
    "upgrade",
]
