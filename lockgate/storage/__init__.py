"""The gateway's database: keys, teams, budget spend and the change counter workers poll.

SQLite by default, PostgreSQL at scale; both through SQLAlchemy's async engine, with the schema
kept by the Alembic migrations shipped in `migrations/`.
"""

from lockgate.storage.database import Database, upgrade
from lockgate.storage.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidRecord,
    NameTaken,
    StorageError,
)
from lockgate.storage.keys import KeyChanges, KeyStore, StoredKey
from lockgate.storage.schema_version import SCHEMA_HEAD, Migration
from lockgate.storage.spend import SpendRecord, SpendStore
from lockgate.storage.teams import StoredTeam, TeamChanges, TeamStore
from lockgate.storage.urls import hide_password

__all__ = [
    "SCHEMA_HEAD",
    "Conflict",
    "Database",
    "DatabaseUnavailable",
    "InvalidRecord",
    "KeyChanges",
    "KeyStore",
    "Migration",
    "NameTaken",
    "SpendRecord",
    "SpendStore",
    "StorageError",
    "StoredKey",
    "StoredTeam",
    "TeamChanges",
    "TeamStore",
    "hide_password",
    "upgrade",
]
