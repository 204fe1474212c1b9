"""This process's metric values as plain numbers, and their Prometheus text exposition.

An observation is an addition here, a few microseconds a request (through prometheus_client's
metric objects it would be ~10, and ~25 with their multiprocess files). The text is written here
too rather than through prometheus_client's generic writer, which costs ~20 µs a sample (a
histogram has ~20), long enough to stall the event loop for a scrape of a few dozen models.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client.utils import floatToGoString

from lockgate.telemetry.metrics_specs import IN_FLIGHT, SPECS, Spec

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram
    from prometheus_client.metrics_core import Metric

__all__ = ["LocalHistogram", "LocalStore", "LocalValue", "exposition"]

_go_float: Callable[[float], str] = floatToGoString
"""How prometheus_client writes a number (a value, a bucket's `le`): both modes write the same."""


class LocalValue:
    __slots__ = ("copied", "labels", "shared", "value")

    def __init__(self, labels: str = "") -> None:
        self.value = 0.0
        self.labels = labels
        """The sample's labels as exposed: `{a="x",b="y"}`."""
        self.copied = 0.0
        self.shared: Counter | None = None
        """Its multiprocess twin (made by the first copy)."""


class LocalHistogram:
    __slots__ = ("bounds", "copied_counts", "copied_sum", "counts", "labels", "shared", "sum")

    def __init__(self, bounds: tuple[float, ...], labels: str) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.labels = labels
        self.copied_counts = list(self.counts)
        self.copied_sum = 0.0
        self.shared: Histogram | None = None

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


class LocalStore:
    """Every value of this process (children made on first use), and their exposition."""

    def __init__(self) -> None:
        self.counters: dict[str, dict[tuple[str, ...], LocalValue]] = {
            spec.name: {} for spec in SPECS if spec.kind == "counter"
        }
        self.histograms: dict[str, dict[tuple[str, ...], LocalHistogram]] = {
            spec.name: {} for spec in SPECS if spec.kind == "histogram"
        }
        self.in_flight = LocalValue()

    def counter(self, spec: Spec, values: tuple[str, ...]) -> LocalValue:
        children = self.counters[spec.name]
        child = children.get(values)
        if child is None:
            child = children[values] = LocalValue(_label_text(spec.labels, values))
        return child

    def histogram(self, spec: Spec, values: tuple[str, ...]) -> LocalHistogram:
        children = self.histograms[spec.name]
        child = children.get(values)
        if child is None:
            child = LocalHistogram(spec.buckets, _label_text(spec.labels, values))
            children[values] = child
        return child

    def exposition(self) -> str:
        lines: list[str] = []
        for spec in SPECS:
            if spec.kind == "counter":
                name = f"{spec.name}_total"
                lines.append(f"# HELP {name} {spec.help}\n# TYPE {name} counter\n")
                for counter in list(self.counters[spec.name].values()):
                    lines.append(f"{name}{counter.labels} {_go_float(counter.value)}\n")
            else:
                lines.append(f"# HELP {spec.name} {spec.help}\n# TYPE {spec.name} histogram\n")
                self._histogram_lines(spec, lines)
        lines.append(f"# HELP {IN_FLIGHT[0]} {IN_FLIGHT[1]}\n# TYPE {IN_FLIGHT[0]} gauge\n")
        lines.append(f"{IN_FLIGHT[0]} {_go_float(self.in_flight.value)}\n")
        return "".join(lines)

    def _histogram_lines(self, spec: Spec, lines: list[str]) -> None:
        les = [f'le="{_go_float(bound)}"}}' for bound in spec.buckets] + ['le="+Inf"}']
        bucket, count, sum_ = f"{spec.name}_bucket", f"{spec.name}_count", f"{spec.name}_sum"
        for histogram in list(self.histograms[spec.name].values()):
            labels = histogram.labels
            prefix = f"{bucket}{labels[:-1]}," if labels else f"{bucket}{{"
            total = 0
            for le, n in zip(les, histogram.counts[:], strict=True):
                total += n
                lines.append(f"{prefix}{le} {_go_float(total)}\n")
            lines.append(f"{count}{labels} {_go_float(total)}\n")
            lines.append(f"{sum_}{labels} {_go_float(histogram.sum)}\n")


def exposition(families: Iterable[Metric]) -> str:
    """The text format of any families (as prometheus_client writes it, minus its per-label
    validation, which costs most of its time)."""
    lines: list[str] = []
    for family in families:
        name = f"{family.name}_total" if family.type == "counter" else family.name
        lines.append(f"# HELP {name} {family.documentation}\n# TYPE {name} {family.type}\n")
        for sample in family.samples:
            labels = _label_text(tuple(sample.labels), tuple(sample.labels.values()))
            lines.append(f"{sample.name}{labels} {_go_float(sample.value)}\n")
    return "".join(lines)


def _label_text(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    pairs = (f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True))
    return "{" + ",".join(pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
