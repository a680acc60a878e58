"""Numbers over any window of a run, exact where the intervals kept their histograms.

Intervals recorded with the loadmgr plugin keep the histogram of their window (`hist`),
so merging those of the intervals inside `[from, to)` gives that window's exact
percentiles: what `metrics show --from/--to` shows and what a test's warm-up leaves out.
Offsets count from the run's first second; a window is made of whole intervals (those
wholly inside it), so its edges are rounded inward to the run's interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTestRun
from loadmgr.models.documents.compact import STEPS_FIELD
from loadmgr.models.histogram import (
    Histogram,
    HistogramError,
    merge_steps_into,
    merge_text_into,
    summary,
)
from loadmgr.models.stats.generator import GeneratorTally, generator_stats, saturation_level

if TYPE_CHECKING:
    from loadmgr.store import Store

TOTALS_PROJECTION = {
    "seq": True,
    "windowStart": True,
    "windowEnd": True,
    "timestamp": True,
    "intervalSec": True,
    "hist": True,
    "intervalRequests": True,
    "intervalFailures": True,
    "currentUsers": True,
    "generator": True,  # a few numbers: the load generator's health in the window
}
_PROJECTION = {
    **TOTALS_PROJECTION,
    "requestStats.method": True,
    "requestStats.name": True,
    "requestStats.intervalRequests": True,
    "requestStats.intervalFailures": True,
    "requestStats.hist": True,
}


@dataclass(frozen=True)
class Window:
    """Offsets in seconds from the run's start; None for its start or end."""

    start: float | None = None
    end: float | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValidationFailed(
                f"invalid window: --to ({self.end:g}s) must come after --from ({self.start:g}s)"
            )

    @property
    def whole(self) -> bool:
        return not self.start and self.end is None


def run_origin(run: LoadTestRun) -> datetime | None:
    """The run's first second: the plugin's window origin, else when the swarm was sent."""
    origin = (run.collector or {}).get("origin")
    if isinstance(origin, int) and not isinstance(origin, bool):
        return datetime.fromtimestamp(origin, tz=timezone.utc)
    return run.startedAt


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass
class _Counts:
    requests: int = 0
    failures: int = 0
    histogram: Histogram | None = None  # None once an interval without one was added

    def add(self, requests: int, failures: int, hist: Any) -> None:
        """`hist`: the histogram's text, or its checked steps (a compact interval's,
        `STEPS_FIELD`), merged as they are; None (or anything else) when there is none."""
        self.requests += requests
        self.failures += failures
        if self.histogram is None:
            return
        if type(hist) is list:
            merge_steps_into(self.histogram, hist)
            return
        try:
            if requests and not isinstance(hist, str):
                raise HistogramError("no histogram")
            merge_text_into(self.histogram, hist if isinstance(hist, str) else None)
        except HistogramError:
            self.histogram = None  # the window's percentiles cannot be exact: say none

    def numbers(self, seconds: float) -> dict[str, Any]:
        stats = summary(self.histogram) if self.histogram is not None else {}
        return {
            "requests": self.requests,
            "failures": self.failures,
            "errorRate": self.failures / self.requests if self.requests else 0.0,
            "rps": self.requests / seconds if seconds > 0 else 0.0,
            "failuresPerSec": self.failures / seconds if seconds > 0 else 0.0,
            "avgResponseMs": stats.get("avg"),
            "minResponseMs": stats.get("min"),
            "maxResponseMs": stats.get("max"),
            "p50ResponseMs": stats.get("p50"),
            "p90ResponseMs": stats.get("p90"),
            "p95ResponseMs": stats.get("p95"),
            "p99ResponseMs": stats.get("p99"),
        }


def _histogram_of(doc: dict[str, Any]) -> Any:
    """An interval's (or item's) histogram: its checked steps where the store gave them
    (a compact interval read with `steps`; a text it kept as text stays text), else `hist`."""
    steps = doc.get(STEPS_FIELD)
    return doc.get("hist") if steps is None else steps


def window_stats(
    store: Store, run: LoadTestRun, window: Window, *, per_request: bool = True
) -> dict[str, Any]:
    """Totals and (unless `per_request` is false) per-request numbers of the intervals
    wholly inside `window`.

    Shaped like a run's `finalStats` (`totals`, `requestStats`), so thresholds evaluate
    on it unchanged; `window` says what it covers and `exact` whether every interval had
    its histogram (without the plugin, percentiles over a window are not known: null).
    """
    origin = run_origin(run)
    if origin is None:
        raise ValidationFailed(f"run {run.id} has not started: it has no window to show")
    low = origin + timedelta(seconds=window.start or 0)
    high = None if window.end is None else origin + timedelta(seconds=window.end)
    total = _Counts(histogram={})
    by_request: dict[tuple[str, str], _Counts] = {}
    first: datetime | None = None
    last: datetime | None = None
    intervals = 0
    peak_rps: float | None = None
    peak_users: int | None = None
    generator = GeneratorTally()
    projection = _PROJECTION if per_request else TOTALS_PROJECTION
    # The plugin's intervals all say their window: the server picks them. Others (older
    # runs, other tools) are read whole and judged here.
    chosen_by_server = run.collectionMode == "plugin"
    documents = (
        store.metrics.iter_window(run.id, low, high, projection, steps=True)
        if chosen_by_server
        else store.metrics.iter_for_run(run.id, projection)
    )
    for doc in documents:
        end = _utc(doc.get("windowEnd")) or _utc(doc.get("timestamp"))
        start = _utc(doc.get("windowStart"))
        if start is None and end is not None:
            start = end - timedelta(seconds=float(doc.get("intervalSec") or 0))
        if start is None or end is None:
            continue
        if not chosen_by_server and (start < low or (high is not None and end > high)):
            continue
        intervals += 1
        requests = int(doc.get("intervalRequests") or 0)
        length = (end - start).total_seconds()
        if length > 0:  # the window's peaks: of its own intervals, by the run's rule
            peak_rps = max(peak_rps or 0.0, requests / length)
        users = doc.get("currentUsers")
        if isinstance(users, int) and not isinstance(users, bool):
            peak_users = max(peak_users or 0, users)
        if first is None or start < first:
            first = start
        if last is None or end > last:
            last = end
        generator.add((start - origin).total_seconds(), length, doc.get("generator"))
        total.add(
            int(doc.get("intervalRequests") or 0),
            int(doc.get("intervalFailures") or 0),
            _histogram_of(doc),
        )
        for item in doc.get("requestStats") or []:
            key = (str(item.get("method") or ""), str(item.get("name") or ""))
            counts = by_request.setdefault(key, _Counts(histogram={}))
            counts.add(
                int(item.get("intervalRequests") or 0),
                int(item.get("intervalFailures") or 0),
                _histogram_of(item),
            )
    seconds = (last - first).total_seconds() if first and last else 0.0
    request_stats = []
    for (method, name), counts in sorted(by_request.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        numbers = counts.numbers(seconds)
        request_stats.append(
            {
                "method": method,
                "name": name,
                "numRequests": numbers["requests"],
                "numFailures": numbers["failures"],
                "errorRate": numbers["errorRate"],
                "requestsPerSec": numbers["rps"],
                "failuresPerSec": numbers["failuresPerSec"],
                "avgResponseTimeMs": numbers["avgResponseMs"],
                "minResponseTimeMs": numbers["minResponseMs"],
                "maxResponseTimeMs": numbers["maxResponseMs"],
                "p50ResponseMs": numbers["p50ResponseMs"],
                "p90ResponseMs": numbers["p90ResponseMs"],
                "p95ResponseMs": numbers["p95ResponseMs"],
                "p99ResponseMs": numbers["p99ResponseMs"],
            }
        )
    return {
        "window": {
            "fromSec": None if first is None else (first - origin).total_seconds(),
            "toSec": None if last is None else (last - origin).total_seconds(),
            "seconds": seconds,
            "intervals": intervals,
        },
        "peaks": {"rps": peak_rps, "users": peak_users},
        "exact": total.histogram is not None,
        # The load generator's peak CPU and saturated seconds in the window (None: not read).
        "generator": generator_stats(
            generator.items, warmup_sec=0, saturation_pct=saturation_level(run)
        ),
        "totals": total.numbers(seconds),
        "requestStats": request_stats,
    }
