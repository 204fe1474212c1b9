"""What can go wrong in the storage layer, as errors a caller (or the CLI) can print as one line."""

from __future__ import annotations

__all__ = [
    "Conflict",
    "DatabaseUnavailable",
    "InvalidRecord",
    "NameTaken",
    "StorageError",
]


class StorageError(Exception):
    """Base of every storage error; its message is safe to show (no password, no SQL)."""


class DatabaseUnavailable(StorageError):
    """The database cannot be opened or reached, or its URL is unusable."""


class Conflict(StorageError):
    """A write would break a uniqueness rule."""


class NameTaken(Conflict):
    """A key or team of that name already exists."""


class InvalidRecord(StorageError, ValueError):
    """A value given to (or read from) the database breaks the key or team schema."""
