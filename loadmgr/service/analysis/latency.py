"""Latency over a run, point by point: the scatter view and the latency heatmap.

The scatter is each interval's response time per request against the time since the run
started (`metrics show --view scatter`), so outliers and a second mode show where a mean
line hides them. The heatmap (HTML report) is the latency distribution over time, read
from the histograms the loadmgr plugin keeps with each interval (`hist`); intervals
recorded without the plugin have none, and the report says so.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from loadmgr.models import LoadTestRun
from loadmgr.models.documents.compact import STEPS_FIELD
from loadmgr.models.histogram import HistogramError, decode, merge_into, merge_steps_into
from loadmgr.service.analysis.views import iso
from loadmgr.service.analysis.windows import run_origin

if TYPE_CHECKING:
    from loadmgr.store import Store

# One scatter point: an interval of one request. Fixed and documented (docs/metrics.md).
SCATTER_FIELDS = (
    "elapsedSec",
    "seq",
    "timestamp",
    "method",
    "name",
    "requests",
    "failures",
    "p50ResponseMs",
    "p95ResponseMs",
    "maxResponseMs",
)
# What the terminal and HTML scatter plot draw: the interval's p95 of each request.
SCATTER_STAT = "p95ResponseMs"

_SCATTER_PROJECTION = {
    "seq": True,
    "timestamp": True,
    "windowEnd": True,
    "requestStats.method": True,
    "requestStats.name": True,
    "requestStats.intervalRequests": True,
    "requestStats.intervalFailures": True,
    "requestStats.p50ResponseMs": True,
    "requestStats.p95ResponseMs": True,
    "requestStats.maxResponseTimeMs": True,
}
_HEATMAP_PROJECTION = {
    "seq": True,
    "timestamp": True,
    "windowStart": True,
    "windowEnd": True,
    "intervalSec": True,
    "intervalRequests": True,
    "hist": True,
}
HEATMAP_COLUMNS = 120  # at most this many columns: a readable cell on a full-width page


def _utc(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def run_start(run: LoadTestRun, first: Any = None) -> datetime | None:
    """Where a run's time axis starts: its first second (else the first interval's end)."""
    return run_origin(run) or _utc(first)


def run_length(run: LoadTestRun, now: datetime | None = None) -> float | None:
    """Seconds from the run's start to its end (now, while it runs; None before it starts)."""
    if run.startedAt is None:
        return None
    end = run.finishedAt
    if end is None:
        end = (now or datetime.now(timezone.utc)) if run.status.is_active else None
    if end is None:
        return float(run.durationSeconds or 0) or None
    return max(0.0, (end - run.startedAt).total_seconds())


def elapsed(moment: Any, origin: datetime | None) -> float | None:
    """Seconds from `origin` to a stored date (None when either is unknown)."""
    when = _utc(moment)
    if when is None or origin is None:
        return None
    return round((when - origin).total_seconds(), 3)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


# -- scatter -------------------------------------------------------------------------------


def scatter_points(store: Store, run: LoadTestRun) -> Iterator[dict[str, Any]]:
    """One point per interval and request that had requests in it, in interval order.

    `elapsedSec` is the interval's end, in seconds from the run's start; the latencies are
    the interval's own with the plugin (Locust's rolling p50/p95 and cumulative max
    without it: docs/metrics.md).
    """
    origin = run_origin(run)
    for doc in store.metrics.iter_for_run(run.id, _SCATTER_PROJECTION, batch_size=200):
        end = doc.get("windowEnd") or doc.get("timestamp")
        origin = origin or _utc(end)
        for item in doc.get("requestStats") or ():
            requests = int(item.get("intervalRequests") or 0)
            if requests <= 0:
                continue  # nothing was measured for it in this interval
            yield {
                "elapsedSec": elapsed(end, origin),
                "seq": doc.get("seq"),
                "timestamp": iso(end),
                "method": str(item.get("method") or ""),
                "name": str(item.get("name") or ""),
                "requests": requests,
                "failures": int(item.get("intervalFailures") or 0),
                "p50ResponseMs": _number(item.get("p50ResponseMs")),
                "p95ResponseMs": _number(item.get("p95ResponseMs")),
                "maxResponseMs": _number(item.get("maxResponseTimeMs")),
            }


def by_request(
    points: Iterable[dict[str, Any]],
    stat: str = SCATTER_STAT,
    *,
    end: float | None = None,
    columns: int | None = None,
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(elapsed seconds, value of `stat`) of each request, requests sorted by name.

    With `end` and `columns`, at most one point per request and column of time is kept,
    the highest (so an outlier is never merged away): memory stays bounded by what can be
    drawn, however long the run.
    """
    kept = _Kept(end, columns)
    for point in points:
        kept.add((point["method"], point["name"]), point.get("elapsedSec"), point.get(stat))
    return kept.grouped()


def scatter_and_heatmap(
    store: Store,
    run: LoadTestRun,
    *,
    end: float | None = None,
    columns: int | None = None,
    max_columns: int = HEATMAP_COLUMNS,
) -> tuple[dict[tuple[str, str], list[tuple[float, float]]], Heatmap]:
    """`by_request(scatter_points(store, run), end=end, columns=columns)` and
    `heatmap(store, run, max_columns)` from one read of the run's intervals (the HTML
    report's: a pass over every interval of a run less). Only the fields they draw are
    read, no point is made whole (dates, counts) only to keep its p95, and histograms come
    as step arrays. An interval that cannot be read is left out of both, named once."""
    kept = _Kept(end, columns)
    scatter_origin = heat_origin = run_origin(run)

    def windows() -> Iterator[tuple[float, float, str | list[int] | None, int]]:
        # Each interval feeds the scatter as the heatmap's windows are drawn from it.
        nonlocal scatter_origin, heat_origin
        for doc in store.metrics.iter_for_run(run.id, _DRAWN, 200, steps=True):
            scatter_origin = _scatter_add(kept, doc, scatter_origin)
            heat_origin, window = _heat_window(doc, heat_origin)
            if window is not None:
                yield window

    matrix = heatmap_matrix(windows(), max_columns)
    return kept.grouped(), matrix


def _scatter_add(kept: _Kept, doc: dict[str, Any], origin: datetime | None) -> datetime | None:
    """An interval's points (as `scatter_points` makes them) into `kept`; the time axis's
    origin after it."""
    stop = doc.get("windowEnd") or doc.get("timestamp")
    origin = origin or _utc(stop)
    x = elapsed(stop, origin)
    for item in doc.get("requestStats") or ():
        if int(item.get("intervalRequests") or 0) <= 0:
            continue  # as `scatter_points`: nothing was measured for it
        key = (str(item.get("method") or ""), str(item.get("name") or ""))
        kept.add(key, x, _number(item.get(SCATTER_STAT)))
    return origin


class _Kept:
    """The points of a scatter, per request: each point in its own slot (its position among
    all points), or with `end` and `columns` the highest of each column of time."""

    def __init__(self, end: float | None, columns: int | None) -> None:
        self.end, self.columns = end, columns
        self.slots: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
        self.index = -1

    def add(self, key: tuple[str, str], x: Any, y: Any) -> None:
        self.index += 1
        slots = self.slots.setdefault(key, {})
        if x is None or y is None:
            return
        slot = self.index
        if self.end and self.columns:
            # A point ends its interval: its column is the one the interval ends in.
            slot = min(self.columns - 1, max(0, math.ceil(float(x) / self.end * self.columns) - 1))
        kept = slots.get(slot)
        if kept is None or float(y) > kept[1]:
            slots[slot] = (float(x), float(y))

    def grouped(self) -> dict[tuple[str, str], list[tuple[float, float]]]:
        return {
            key: sorted(slots.values())
            for key, slots in sorted(self.slots.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        }


# -- heatmap -------------------------------------------------------------------------------


def band_edges(low_ms: float, high_ms: float) -> list[float]:
    """Latency bands on a 1-2-5 scale (0, 1, 2, 5, 10, 20, 50… ms) from the band holding
    `low_ms` to the one holding `high_ms`: three rows a decade, and Locust's rounding
    (to 10 ms from 100 ms, 100 ms from 1 s…) never splits a bucket between two bands."""
    edges = [0.0]
    value = 1.0
    while value <= max(high_ms, 1.0):
        edges.append(value)
        value = _next_125(value)
    edges.append(value)
    start = 0
    while start + 1 < len(edges) - 1 and edges[start + 1] <= low_ms:
        start += 1
    return edges[start:]


def _next_125(value: float) -> float:
    power = 10.0 ** math.floor(math.log10(value) + 1e-9)
    lead = round(value / power)
    return (2.0 if lead == 1 else 5.0 if lead == 2 else 10.0) * power


@dataclass
class Heatmap:
    """Requests per latency band (rows, lowest first) and stretch of time (columns)."""

    columns: list[tuple[float, float]] = field(default_factory=list)  # (from, to) seconds
    bands: list[tuple[float, float]] = field(default_factory=list)  # [low, high) ms
    counts: list[list[int]] = field(default_factory=list)  # counts[band][column]
    intervals: int = 0  # intervals drawn (those with a histogram)
    without_histogram: int = 0  # intervals with requests but no histogram

    @property
    def requests(self) -> int:
        return sum(map(sum, self.counts))

    @property
    def peak(self) -> int:
        return max((max(row) for row in self.counts if row), default=0)


def heatmap_matrix(
    intervals: Iterable[tuple[float, float, str | list[int] | None, int]],
    max_columns: int = HEATMAP_COLUMNS,
) -> Heatmap:
    """The heatmap of intervals given as (from s, to s, histogram, requests), a histogram
    as its text or as a checked flat step array (`compact.STEPS_FIELD`: no text built to
    be parsed again).

    Neighbouring intervals share a column when there are more than `max_columns`; every
    request of every interval with a histogram is counted once, so the cells add up to
    those intervals' requests.
    """
    kept: list[tuple[float, float, dict[int, int]]] = []
    result = Heatmap()
    for start, end, text, requests in intervals:
        try:
            if isinstance(text, list):
                histogram = merge_steps_into({}, text)
            else:
                histogram = decode(text) if text else {}
        except HistogramError:
            histogram = {}
        if not histogram:
            result.without_histogram += 1 if requests > 0 else 0
            continue
        kept.append((start, end, histogram))
    if not kept:
        return result
    low = min(min(h) for _, _, h in kept)
    high = max(max(h) for _, _, h in kept)
    edges = band_edges(low, high)
    result.bands = list(zip(edges, edges[1:], strict=False))
    step = math.ceil(len(kept) / max(1, max_columns))
    result.counts = [[0] * math.ceil(len(kept) / step) for _ in result.bands]
    for index in range(0, len(kept), step):
        group = kept[index : index + step]
        result.columns.append((group[0][0], group[-1][1]))
        column = index // step
        # The column's histograms merged first: each bucket is placed in its band once.
        merged: dict[int, int] = {}
        for _, _, histogram in group:
            merge_into(merged, histogram)
        for ms, count in merged.items():
            result.counts[_band_of(ms, edges)][column] += count
    result.intervals = len(kept)
    return result


def _band_of(ms: float, edges: list[float]) -> int:
    return min(len(edges) - 2, max(0, bisect_right(edges, ms) - 1))


def heatmap(store: Store, run: LoadTestRun, max_columns: int = HEATMAP_COLUMNS) -> Heatmap:
    """The run's latency heatmap, from its intervals' histograms (streamed)."""
    origin = run_origin(run)

    def windows() -> Iterator[tuple[float, float, str | list[int] | None, int]]:
        nonlocal origin
        for doc in store.metrics.iter_for_run(run.id, _HEATMAP_PROJECTION, 200, steps=True):
            origin, window = _heat_window(doc, origin)
            if window is not None:
                yield window

    return heatmap_matrix(windows(), max_columns)


def _heat_window(
    doc: dict[str, Any], origin: datetime | None
) -> tuple[datetime | None, tuple[float, float, str | list[int] | None, int] | None]:
    """The time axis's origin after an interval, and the interval as `heatmap_matrix`
    takes it (None: it says no time)."""
    end = _utc(doc.get("windowEnd")) or _utc(doc.get("timestamp"))
    if end is None:
        return origin, None
    origin = origin or end
    start = _utc(doc.get("windowStart"))
    stop = elapsed(end, origin) or 0.0
    begin = elapsed(start, origin) if start else stop - float(doc.get("intervalSec") or 0)
    hist = doc.get(STEPS_FIELD, doc.get("hist"))
    window = (
        max(0.0, begin or 0.0),
        stop,
        hist if isinstance(hist, str | list) else None,
        int(doc.get("intervalRequests") or 0),
    )
    return origin, window


# What the report's one read (`scatter_and_heatmap`) takes of an interval: the heatmap's
# fields, and of each request only what the scatter draws.
_DRAWN = {
    **_HEATMAP_PROJECTION,
    **{
        key: True
        for key in _SCATTER_PROJECTION
        if not key.startswith("requestStats.")
        or key.removeprefix("requestStats.") in ("method", "name", "intervalRequests", SCATTER_STAT)
    },
}
