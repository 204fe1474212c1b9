"""Usage rows as SQLite stores them, in the statements that cost SQLite's driver least.

The sqlite3 driver binds an int, float or str directly, but passes None and bool through its
adaptation protocol first, which costs about ten times as much (an attribute lookup fails, and
its error message is formatted and dropped, for every such value): a row's bools go as 0 and 1
(what SQLite stores for them anyway), and its NULLs are left out of the statement instead of
bound. Rows are grouped by which nullable columns they lack, one statement each: a batch usually
has one or two such groups. And a statement inserts `ROWS_PER_STATEMENT` rows at a time, which
costs SQLite less per row than as many runs of a one-row statement.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson

__all__ = ["COLUMNS", "NULLABLE", "ROWS_PER_STATEMENT", "SqliteStatements"]

Values = tuple[Any, ...]
_Nulls = tuple[bool, ...]

COLUMNS = (
    "request_id",
    "client_request_id",
    "created_at",
    "endpoint",
    "key_name",
    "team",
    "subject",
    "model",
    "provider",
    "target_model",
    "prompt",
    "prompt_version",
    "status",
    "error_type",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "estimated",
    "cost_usd_micros",
    "latency_ms",
    "ttft_ms",
    "cache_hit",
    "attempts",
    "stream",
    "tags",
)
"""Every column of `usage`, in table order (a test keeps it equal to `tables.UsageRow`)."""
NULLABLE = (
    "client_request_id",
    "key_name",
    "team",
    "subject",
    "model",
    "provider",
    "target_model",
    "prompt",
    "prompt_version",
    "error_type",
    "ttft_ms",
)
"""The nullable columns, in table order, as `batches` tests them (a test keeps this right)."""
_CONVERTED = ("created_at", "tags", "estimated", "cache_hit", "stream")
"""The columns `batches` converts, last in each statement, in this order."""
ROWS_PER_STATEMENT = 16
"""Rows a multi-row insert takes (~5k instructions a row less than one-row inserts); with 25
columns, under the 999 parameters a statement may have in older SQLite builds."""


@dataclass(frozen=True, slots=True)
class _Inserts:
    """The inserts of rows with NULL in the same columns (of one row, of `ROWS_PER_STATEMENT`),
    and what they take from a row as it is, in their order."""

    one: str
    many: str
    present: Callable[[Values], Values]


class SqliteStatements:
    """Per combination of NULL columns, the inserts of the others (made on first use)."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[_Nulls, _Inserts] = {}

    def batches(self, rows: Sequence[Values]) -> list[tuple[str, list[Values]]]:
        """`rows` (values in the table's column order) as (statement, parameters) pairs, for the
        driver's `executemany`."""
        batches = []
        for inserts, stored in self._grouped(rows):
            full = len(stored) - len(stored) % ROWS_PER_STATEMENT
            if full:
                many = [
                    tuple(chain.from_iterable(stored[start : start + ROWS_PER_STATEMENT]))
                    for start in range(0, full, ROWS_PER_STATEMENT)
                ]
                batches.append((inserts.many, many))
            if full < len(stored):
                batches.append((inserts.one, stored[full:]))
        return batches

    def _grouped(self, rows: Sequence[Values]) -> Iterable[tuple[_Inserts, list[Values]]]:
        """`rows` as stored, grouped by the inserts that take them."""
        groups: dict[_Nulls, tuple[_Inserts, list[Values]]] = {}
        seconds: dict[int, str] = {}  # most rows of a batch share their second: formatted once
        for row in rows:
            (  # the columns in table order (a test checks each one's way to the table)
                _,
                client_request_id,
                created_at,
                _,
                key_name,
                team,
                subject,
                model,
                provider,
                target_model,
                prompt,
                prompt_version,
                _,
                error_type,
                _,
                _,
                _,
                estimated,
                _,
                _,
                ttft_ms,
                cache_hit,
                _,
                stream,
                tags,
            ) = row
            nulls = (
                client_request_id is None,
                key_name is None,
                team is None,
                subject is None,
                model is None,
                provider is None,
                target_model is None,
                prompt is None,
                prompt_version is None,
                error_type is None,
                ttft_ms is None,
            )
            group = groups.get(nulls)
            if group is None:
                group = groups[nulls] = (self._inserts(nulls), [])
            whole = int(created_at)
            second = seconds.get(whole)
            if second is None:
                second = seconds[whole] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole))
            group[1].append(
                (
                    *group[0].present(row),
                    # The text SQLAlchemy's DateTime keeps in SQLite (naive; UTC by this
                    # schema's convention), microseconds truncated (%d).
                    "%s.%06d" % (second, (created_at - whole) * 1_000_000),  # noqa: UP031
                    orjson.dumps(tags).decode() if tags else "{}",
                    1 if estimated else 0,
                    1 if cache_hit else 0,
                    1 if stream else 0,
                )
            )
        return groups.values()

    def _inserts(self, nulls: _Nulls) -> _Inserts:
        inserts = self._known.get(nulls)
        if inserts is None:
            absent = {name for name, null in zip(NULLABLE, nulls, strict=True) if null}
            present = [name for name in COLUMNS if name not in absent and name not in _CONVERTED]
            names = (*present, *_CONVERTED)
            values = f"({', '.join('?' * len(names))})"
            head = f"INSERT INTO usage ({', '.join(names)}) VALUES"
            tail = "ON CONFLICT (request_id) DO NOTHING"
            inserts = self._known[nulls] = _Inserts(
                f"{head} {values} {tail}",
                f"{head} {', '.join([values] * ROWS_PER_STATEMENT)} {tail}",
                operator.itemgetter(*(COLUMNS.index(name) for name in present)),
            )
        return inserts
