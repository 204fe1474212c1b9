"""Alembic migrations of the Lockgate database, run by `lockgate.storage.migrate`.

They ship inside the package and run without an alembic.ini. A new migration is a new file in
`versions/` (`0002_<what>.py`) whose `down_revision` is the previous head; keep `tables.py` in
step (tests/storage compares the migrated schema with it).
"""
