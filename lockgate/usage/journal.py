"""The usage journal: ledger rows that could not be written, kept in files until they can be.

While the database is unreachable, each failed batch is appended (one JSON row per line, flushed
and fsynced) to this process's open segment, `usage-<owner>-<n>.open`, where the owner is the
pid plus a random token (a restarted container reuses pids). Replaying seals the segment (renames
it to `.jsonl`) so new failures start a fresh one, claims sealed files by renaming them to
`.replaying-<owner>` (a rename is atomic, so two workers never take the same file), and deletes a
file once its rows are in the database. Files left by a process that died (an open segment or a
claim of an owner no longer running) are taken over by the next replay. Rows are idempotent by
request id, so a file replayed twice does no harm.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["Journal"]

log = logging.getLogger("lockgate.usage")

Row = dict[str, Any]

_INCARNATION = os.urandom(4).hex()
"""Tells this process from an earlier one that had the same pid (a restarted container)."""
_SEGMENTS = itertools.count()


class Journal:
    """Rows waiting for the database, in files under `directory`."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._owner = f"{os.getpid()}_{_INCARNATION}"
        self._segment: IO[bytes] | None = None
        self._segment_path: Path | None = None

    @property
    def directory(self) -> Path:
        return self._directory

    def append(self, rows: Sequence[Row]) -> None:
        """Keep `rows` on disk (durably: flushed and fsynced before this returns)."""
        if not rows:
            return
        segment = self._open_segment()
        segment.write(b"".join(orjson.dumps(row) + b"\n" for row in rows))
        segment.flush()
        os.fsync(segment.fileno())

    def pending(self) -> bool:
        """Whether any process left rows here (cheap enough to ask every second or two)."""
        if self._segment is not None:
            return True
        try:
            with os.scandir(self._directory) as entries:
                return any(entry.name.startswith("usage-") for entry in entries)
        except FileNotFoundError:
            return False

    def claim(self) -> list[Path]:
        """Seal this process's segment and take every file ready for replay (ours to delete)."""
        self._seal()
        claimed = []
        for path in sorted(self._candidates()):
            target = path.with_name(f"{_stem(path)}.replaying-{self._owner}")
            try:
                path.rename(target)
            except FileNotFoundError:
                continue  # another worker took it first
            claimed.append(target)
        return claimed

    @staticmethod
    def read(path: Path) -> Iterator[Row]:
        """The rows of a claimed file; a line cut short by a crash is skipped (and logged)."""
        with path.open("rb") as file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("%s line %d: not a complete usage record; skipped", path, number)
                    continue
                if isinstance(row, dict):
                    yield row

    def release(self, path: Path) -> None:
        """Give a claimed file back, to be replayed later."""
        with contextlib.suppress(FileNotFoundError):
            path.rename(path.with_name(f"{_stem(path)}.jsonl"))

    @staticmethod
    def done(path: Path) -> None:
        path.unlink(missing_ok=True)

    def close(self) -> None:
        self._seal()

    def _open_segment(self) -> IO[bytes]:
        if self._segment is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            name = f"usage-{self._owner}-{next(_SEGMENTS)}.open"
            self._segment_path = self._directory / name
            self._segment = self._segment_path.open("ab")
        return self._segment

    def _seal(self) -> None:
        if self._segment is None or self._segment_path is None:
            return
        self._segment.close()
        path = self._segment_path
        self._segment, self._segment_path = None, None
        path.rename(path.with_suffix(".jsonl"))

    def _candidates(self) -> Iterator[Path]:
        try:
            entries = list(self._directory.iterdir())
        except FileNotFoundError:
            return
        for path in entries:
            if not path.name.startswith("usage-"):
                continue
            suffix = path.suffix
            if suffix == ".jsonl":
                yield path
            elif (suffix == ".open" or suffix.startswith(".replaying-")) and not self._alive(
                _owner(path)
            ):
                yield path  # left by a process that died

    def _alive(self, owner: str) -> bool:
        pid_text, _, _token = owner.partition("_")
        if not pid_text.isdigit() or int(pid_text) <= 0:
            return False
        pid = int(pid_text)
        if pid == os.getpid():
            return owner == self._owner
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # running, as another user
        return True


def _stem(path: Path) -> str:
    return path.name.partition(".")[0]


def _owner(path: Path) -> str:
    """Who wrote (`.open`) or claimed (`.replaying-<owner>`) a file."""
    suffix = path.suffix
    if suffix.startswith(".replaying-"):
        return suffix.removeprefix(".replaying-")
    parts = _stem(path).split("-")
    return parts[1] if len(parts) > 1 else ""
