"""Change triage (`tests trend --explain`): what moved at each change point, and where else.

For each change point of a trend:

- **by request**: the mean p95 and RPS of each request over the runs of the regime before
  and the regime after (at most `SIDE_RUNS` each side, the nearest to the change), ranked
  by how much the request moved (the larger of its two relative changes): one slow request
  out of five comes first;
- **by latency band**: the runs' interval histograms merged per side (each run's warm-up
  left out; with `--request`, that request's histograms), and the mean latency
  within each band of requests (≤p50, p50–p90, p90–p99, >p99) compared: whether the tail
  moved or the whole distribution;
- **environment-wide**: other tests of the same Locust cluster (not the built-in local one,
  which is each machine's own) or target host that have a change point of the same metric
  within a day of it (at most `NEIGHBOURS` tests, searched as this trend is).

Nothing here writes. docs/trends.md, "Change triage".
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loadmgr.models.documents.base import LOCAL_CLUSTER_ID
from loadmgr.models.histogram import Histogram, HistogramError, merge_text_into
from loadmgr.service.analysis.compare import stats_value
from loadmgr.service.analysis.trends import (
    ChangePoint,
    MetricTrend,
    Trend,
    TrendOptions,
    build_trend,
    history_runs,
)

if TYPE_CHECKING:
    from loadmgr.store import Store

SIDE_RUNS = 10  # runs read each side of a change: the request stats and histograms
NEIGHBOURS = 20  # other tests searched for the same change
SAME_DAY = timedelta(days=1)
BANDS = (("<=p50", 0.0, 0.5), ("p50-p90", 0.5, 0.9), ("p90-p99", 0.9, 0.99), (">p99", 0.99, 1.0))
_HIST = {
    "seq": True,
    "timestamp": True,
    "windowStart": True,
    "intervalSec": True,
    "hist": True,
    "requestStats.method": True,
    "requestStats.name": True,
    "requestStats.hist": True,
}


@dataclass
class Explanation:
    """One change point, broken down."""

    change: ChangePoint
    requests: list[dict[str, Any]]
    bands: list[dict[str, Any]]
    shape: str  # "tail", "upper half", "whole distribution", "none", "unknown"
    elsewhere: list[dict[str, Any]]

    def to_document(self) -> dict[str, Any]:
        return {
            **self.change.to_document(),
            "requests": self.requests,
            "bands": self.bands,
            "shape": self.shape,
            "environmentWide": bool(self.elsewhere),
            "elsewhere": self.elsewhere,
        }


def explain_trend(store: Store, trend: Trend) -> list[Explanation]:
    """Every change point of `trend`, oldest first, explained."""
    neighbours = _neighbour_trends(store, trend)
    found = []
    for series in trend.metrics:
        for k, change in enumerate(series.changes):
            before, after = ([trend.runs[i].id for i in side] for side in _sides(series, k))
            bands, shape = _by_band(store, before, after, trend.options)
            requests = _by_request(store, before, after)
            elsewhere = _elsewhere(trend, change, neighbours)
            found.append(Explanation(change, requests, bands, shape, elsewhere))
    return sorted(found, key=lambda e: (e.change.index, e.change.metric))


def _sides(series: MetricTrend, k: int) -> tuple[list[int], list[int]]:
    """The searched positions of the regimes either side of change `k`, nearest first."""
    changes = series.changes
    low = changes[k - 1].index if k else 0
    high = changes[k + 1].index if k + 1 < len(changes) else len(series.values)
    here = changes[k].index
    searched = [i for i, mean in enumerate(series.regime_means) if mean is not None]
    before = [i for i in searched if low <= i < here][-SIDE_RUNS:]
    after = [i for i in searched if here <= i < high][:SIDE_RUNS]
    return before, after


def _stats(store: Store, run_ids: list[str]) -> list[dict[str, Any]]:
    found = (store.runs.find_by_id(run_id) for run_id in run_ids)
    return [run.judgedStats or run.finalStats or {} for run in found if run is not None]


def _relative(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before == 0:
        return None
    return (after - before) / abs(before)


def _by_request(store: Store, before: list[str], after: list[str]) -> list[dict[str, Any]]:
    """Each request's mean p95 and RPS before and after, the one that moved most first."""
    sides = _stats(store, before), _stats(store, after)
    names: dict[str, None] = {}
    for stats in (*sides[0], *sides[1]):
        for item in stats.get("requestStats") or ():
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                names[f"{item.get('method') or ''} {item['name']}".strip()] = None
    rows = []
    for name in names:
        row: dict[str, Any] = {"request": name}
        for key in ("p95", "rps"):
            means: list[float | None] = []
            for side in sides:
                values = [stats_value(stats, key, name) for stats in side]
                known = [v for v in values if v is not None and math.isfinite(v)]
                means.append(statistics.fmean(known) if known else None)
            row[f"{key}Before"], row[f"{key}After"] = means
            row[f"{key}Change"] = _relative(*means)
        rows.append(row)
    rows.sort(
        key=lambda r: (-max(abs(r["p95Change"] or 0.0), abs(r["rpsChange"] or 0.0)), r["request"])
    )
    return [{"rank": i + 1, **row} for i, row in enumerate(rows)]


def _merged(store: Store, run_ids: list[str], request: str | None) -> Histogram:
    """The runs' interval histograms merged, each run's warm-up left out (as its judged
    numbers leave it out); with `request`, that request's histograms (`--request`)."""
    from loadmgr.models.stats.stored import find_request
    from loadmgr.service.analysis.windows import run_origin

    total: Histogram = {}
    for run_id in run_ids:
        run = store.runs.find_by_id(run_id)
        origin = run_origin(run) if run is not None else None
        if run is None or origin is None:
            continue
        judged_from = origin + timedelta(seconds=max(run.warmupSec, 0))
        for doc in store.metrics.iter_for_run(run_id, _HIST, batch_size=200):
            start = _window_start(doc)
            if start is None or start < judged_from:
                continue  # a warm-up interval (or one that does not say when it was)
            item = doc if request is None else find_request(doc, request)
            text = item.get("hist") if item is not None else None
            try:
                merge_text_into(total, text if isinstance(text, str) else None)
            except HistogramError:
                continue  # an interval written by anything: left out, not a crash
    return total


def _window_start(doc: dict[str, Any]) -> datetime | None:
    """When an interval's window began: `windowStart`, else its end less its length."""
    start, end = doc.get("windowStart"), doc.get("timestamp")
    if not isinstance(start, datetime) and isinstance(end, datetime):
        length = doc.get("intervalSec")
        if isinstance(length, int | float) and not isinstance(length, bool):
            start = end - timedelta(seconds=float(length))
    if not isinstance(start, datetime):
        return None
    return start if start.tzinfo else start.replace(tzinfo=timezone.utc)


def band_means(histogram: Histogram) -> list[float | None]:
    """The mean latency of the requests within each of BANDS (quantile ranges)."""
    total = sum(histogram.values())
    if total <= 0:
        return [None] * len(BANDS)
    sums = [0.0] * len(BANDS)
    weights = [0.0] * len(BANDS)
    seen = 0
    for ms in sorted(histogram):
        low, high = seen / total, (seen + histogram[ms]) / total
        seen += histogram[ms]
        for b, (_, start, end) in enumerate(BANDS):
            share = max(0.0, min(high, end) - max(low, start))
            sums[b] += share * ms
            weights[b] += share
    return [s / w if w > 0 else None for s, w in zip(sums, weights, strict=True)]


def _by_band(
    store: Store, before: list[str], after: list[str], options: TrendOptions
) -> tuple[list[dict[str, Any]], str]:
    """The bands' means either side and their changes, and what moved."""
    min_change, request = options.detection.min_change, options.request
    means = band_means(_merged(store, before, request)), band_means(_merged(store, after, request))
    bands = [
        {"band": name, "before": a, "after": b, "change": _relative(a, b)}
        for (name, _, _), a, b in zip(BANDS, *means, strict=True)
    ]
    changes = [_relative(a, b) for a, b in zip(*means, strict=True)]
    if any(change is None for change in changes):
        return bands, "unknown"  # runs without histograms (no plugin) on one side
    moved = [abs(change or 0.0) >= min_change for change in changes]
    if moved[0]:
        shape = "whole distribution"
    elif moved[1]:
        shape = "upper half"
    else:
        shape = "tail" if any(moved) else "none"
    return bands, shape


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _neighbour_trends(store: Store, trend: Trend) -> list[tuple[str, Trend]]:
    """Other tests sharing the cluster or target host, each with its trend searched."""
    test = trend.test
    shared: dict[str, str] = {}
    if test.locustClusterId != LOCAL_CLUSTER_ID:
        for doc in store.tests.find_many(cluster=test.locustClusterId, limit=NEIGHBOURS + 1):
            shared.setdefault(str(doc.get("id")), "cluster")
    for doc in store.tests.find_many(limit=1000):
        target = doc.get("targetUrl")
        if isinstance(target, str) and _host(target) == _host(test.targetUrl):
            shared.setdefault(str(doc.get("id")), "target host")
    shared.pop(test.id, None)
    options = replace(trend.options, request=None)
    found = []
    for test_id, why in list(shared.items())[:NEIGHBOURS]:
        other = store.tests.find_by_id(test_id)
        if other is None:
            continue
        runs = history_runs(store, other, options)
        found.append((why, build_trend(other, runs, options)))
    return found


def _elsewhere(
    trend: Trend, change: ChangePoint, neighbours: list[tuple[str, Trend]]
) -> list[dict[str, Any]]:
    """The other tests' change points of the same metric within a day of `change`."""
    when = trend.runs[change.index].createdAt
    if when is None:
        return []
    found = []
    for why, other in neighbours:
        for theirs in other.change_points:
            at = other.runs[theirs.index].createdAt
            if theirs.metric == change.metric and at is not None and abs(at - when) <= SAME_DAY:
                found.append(
                    {
                        "test": other.test.name,
                        "shares": why,
                        "runId": theirs.run_id,
                        "relativeChange": theirs.to_document()["relativeChange"],
                        "regression": theirs.regression,
                    }
                )
    return found
