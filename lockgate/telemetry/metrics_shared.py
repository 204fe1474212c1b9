"""Several workers: copying each one's values into prometheus_client's multiprocess files.

A supervisor names a fresh directory in `PROMETHEUS_MULTIPROC_DIR` (`prepare_multiprocess_dir`)
before its workers start; in each worker a thread copies the values every second, and at exit,
into prometheus_client's memory-mapped values there, and whichever worker answers the scrape
renders the sum of all the workers' files, its own copied first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client import multiprocess as prometheus_multiprocess

from lockgate.telemetry.metrics_specs import IN_FLIGHT, SPECS

if TYPE_CHECKING:
    from lockgate.telemetry.metrics_store import LocalHistogram, LocalStore

__all__ = [
    "MULTIPROC_ENV",
    "SharedCopier",
    "prepare_multiprocess_dir",
    "remove_multiprocess_dir",
    "worker_exited",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class SharedCopier:
    """Copies what the store gained since the last copy into this worker's multiprocess files.

    Only the event loop's thread changes the store, only a copy (under the lock) changes the
    `copied` marks, so a copy racing an observation just leaves it for the next copy."""

    def __init__(self, store: LocalStore, interval_s: float) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._counters = {
            spec.name: Counter(spec.name, spec.help, spec.labels, registry=None)
            for spec in SPECS
            if spec.kind == "counter"
        }
        self._histograms = {
            spec.name: Histogram(
                spec.name, spec.help, spec.labels, registry=None, buckets=spec.buckets
            )
            for spec in SPECS
            if spec.kind == "histogram"
        }
        self._in_flight = Gauge(*IN_FLIGHT, registry=None, multiprocess_mode="livesum")
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="lockgate-metrics", daemon=True
        )
        self._thread.start()
        atexit.register(self.copy)

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.copy()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        atexit.unregister(self.copy)
        self.copy()

    def copy(self) -> None:
        with self._lock:
            for name, counters in self._store.counters.items():
                parent = self._counters[name]
                for values, counter in list(counters.items()):
                    if counter.shared is None:  # made even at 0: shows as with one process
                        counter.shared = parent.labels(*values)
                    value = counter.value
                    if value != counter.copied:
                        counter.shared.inc(value - counter.copied)
                        counter.copied = value
            for name, histograms in self._store.histograms.items():
                for values, histogram in list(histograms.items()):
                    self._copy_histogram(self._histograms[name], values, histogram)
            in_flight = self._store.in_flight
            if in_flight.value != in_flight.copied:
                in_flight.copied = in_flight.value
                self._in_flight.set(in_flight.copied)

    @staticmethod
    def _copy_histogram(
        parent: Histogram, values: tuple[str, ...], histogram: LocalHistogram
    ) -> None:
        shared = histogram.shared
        if shared is None:
            shared = histogram.shared = parent.labels(*values)
        counts = histogram.counts[:]
        total = histogram.sum
        if counts == histogram.copied_counts:
            return
        # prometheus_client has no public "add n to a bucket": its own observe() does this.
        for bucket, count, copied in zip(
            shared._buckets, counts, histogram.copied_counts, strict=True
        ):
            if count != copied:
                bucket.inc(count - copied)
        shared._sum.inc(total - histogram.copied_sum)
        histogram.copied_counts = counts
        histogram.copied_sum = total


def prepare_multiprocess_dir(workers: int) -> str | None:
    """For a supervisor, before it starts `workers` processes: a fresh directory for their metric
    files, named in the environment they inherit (inside `PROMETHEUS_MULTIPROC_DIR` when that is
    already set, e.g. to a tmpfs). None for one worker, which keeps its metrics in memory."""
    if workers <= 1:
        return None
    parent = os.environ.get(MULTIPROC_ENV) or None
    if parent is not None and not os.path.isdir(parent):
        parent = None
    path = tempfile.mkdtemp(prefix="lockgate-metrics-", dir=parent)
    os.environ[MULTIPROC_ENV] = path
    return path


def remove_multiprocess_dir(path: str) -> None:
    """After the workers have stopped: delete their metric files."""
    shutil.rmtree(path, ignore_errors=True)
    if os.environ.get(MULTIPROC_ENV) == path:
        del os.environ[MULTIPROC_ENV]


def worker_exited(pid: int) -> None:
    """A worker is gone: drop its live gauges (its in-flight count) from the sums."""
    if os.environ.get(MULTIPROC_ENV):
        prometheus_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
