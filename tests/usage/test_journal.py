"""The usage journal: what a crashed or restarted gateway left on disk is replayed exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from lockgate.storage import Database
from lockgate.storage.usage import as_row, usage_values
from lockgate.usage.journal import Journal
from lockgate.usage.ledger import Ledger
from lockgate.usage.record import UsageRecord
from tests.storage.raw import query


def rows(*ids: str) -> list[dict[str, object]]:
    return [as_row(usage_values(UsageRecord(id_, "chat", model="m"))) for id_ in ids]


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True
    )
    return int(child.stdout)


def test_appended_rows_are_claimed_read_and_deleted(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    assert not journal.pending()
    journal.append(rows("a", "b"))
    journal.append(rows("c"))
    assert journal.pending()
    (claimed,) = journal.claim()  # the open segment is sealed first
    assert [row["request_id"] for row in journal.read(claimed)] == ["a", "b", "c"]
    journal.done(claimed)
    assert not journal.pending()


def test_a_dead_process_s_segment_is_taken_over_and_a_torn_line_skipped(tmp_path: Path) -> None:
    left = tmp_path / f"usage-{dead_pid()}_0badc0de-0.open"
    left.write_bytes(orjson.dumps(rows("x")[0]) + b"\n" + b'{"request_id": "half')
    (claimed,) = Journal(tmp_path).claim()
    assert [row["request_id"] for row in Journal.read(claimed)] == ["x"]


def test_a_restarted_process_with_the_same_pid_takes_over_the_old_segment(tmp_path: Path) -> None:
    """Containers reuse pids: the owner is pid plus a token, not the pid alone."""
    import os

    stale = tmp_path / f"usage-{os.getpid()}_00000000-0.open"
    stale.write_bytes(orjson.dumps(rows("old")[0]) + b"\n")
    (claimed,) = Journal(tmp_path).claim()
    assert [row["request_id"] for row in Journal.read(claimed)] == ["old"]


def test_a_live_process_s_open_segment_and_claims_are_left_alone(tmp_path: Path) -> None:
    writer = Journal(tmp_path)
    writer.append(rows("busy"))
    assert Journal(tmp_path).claim() == []  # still being written by `writer`
    (claimed,) = writer.claim()
    assert Journal(tmp_path).claim() == []  # claimed by `writer`, which is alive
    writer.release(claimed)
    assert len(Journal(tmp_path).claim()) == 1


def test_two_journals_never_claim_the_same_file(tmp_path: Path) -> None:
    for number in range(20):
        Journal(tmp_path).append(rows(f"r{number}"))  # each sealed when its writer claims or dies
    first, second = Journal(tmp_path), Journal(tmp_path)
    for path in tmp_path.iterdir():
        path.rename(path.with_suffix(".jsonl"))
    taken = first.claim() + second.claim()
    assert len(taken) == 20
    assert len({path.name.partition(".")[0] for path in taken}) == 20


async def test_the_ledger_replays_the_journal_once_the_database_answers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    journal = Journal(tmp_path / "journal")
    journal.append(rows("j1", "j2"))
    journal.append(rows("j2", "j3"))  # j2 twice: written, but its answer was lost
    async with await Database.open(url) as db:
        ledger = Ledger(db.usage.insert, journal)
        assert await ledger.replay() == 4
        assert await ledger.replay() == 0
    stored = await query(url, "SELECT request_id FROM usage ORDER BY request_id")
    assert [row[0] for row in stored] == ["j1", "j2", "j3"]
    assert not journal.pending()


async def test_a_batch_the_database_refuses_goes_to_the_journal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    journal = Journal(tmp_path / "journal")
    async with await Database.open(url) as db:
        pass
    ledger = Ledger(db.usage.insert, journal)  # the database is closed: inserts fail
    (tmp_path / "ledger.db").unlink()
    (tmp_path / "ledger.db").mkdir()  # and cannot be reopened
    ledger.add(UsageRecord("kept", "chat"))
    assert not await ledger.flush()
    (claimed,) = journal.claim()
    assert [row["request_id"] for row in journal.read(claimed)] == ["kept"]
