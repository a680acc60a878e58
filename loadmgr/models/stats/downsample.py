"""Intervals merged into longer windows, exactly: what retention's downsampling stores.

A merged window holds the sum of its intervals' histograms (`hist`, overall and per
request), so any percentile over it, or over any set of merged windows, is the one its
original intervals gave: histograms add, and percentiles are read from the sum. Counts add,
rates are the window's counts over its seconds, cumulative totals are the last interval's.

Only intervals with histograms (the plugin's, `percentileWindow` "interval") merge: Locust's
rolling percentiles cannot be added, so such intervals keep their detail until dropped.
The merged window is stored under the seq of its first interval and says the last one it
covers (`mergedThrough`) and its step (`resolutionSec`): a reader in seq order skips an
interval a merged window already covers (store/metrics.py), so a prune stopped between
writing the window and deleting its originals never counts a request twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from loadmgr.models.documents.compact import STEPS_FIELD
from loadmgr.models.histogram import (
    Histogram,
    interval_latencies,
    merge_steps_into,
    merge_text_into,
    summary_and_steps_text,
)

Interval = Mapping[str, Any]

# Every per-request field `merge` reads (and `mergeable`): a prune decodes only these of
# each stored interval's entries; a merged entry is made of them alone.
REQUEST_FIELDS = frozenset(
    {
        "method",
        "name",
        "intervalRequests",
        "intervalFailures",
        "avgContentLength",
        "numRequests",
        "numFailures",
        "hist",
    }
)


def mergeable(interval: Interval) -> bool:
    """Whether `interval` can be merged exactly (it carries its window and histograms)."""
    if interval.get("percentileWindow") != "interval" or interval.get("gap"):
        return False
    if not isinstance(interval.get("windowStart"), datetime):
        return False
    if not isinstance(interval.get("windowEnd"), datetime):
        return False
    items = [interval, *(interval.get("requestStats") or [])]
    return all(
        item.get("hist") or item.get(STEPS_FIELD) or not item.get("intervalRequests")
        for item in items
    )


def _add(histogram: Histogram, item: Interval) -> None:
    """`item`'s histogram added to `histogram`: its checked steps as the store read them
    (`expand(steps=True)`: no text made to be parsed again), else its text."""
    steps = item.get(STEPS_FIELD)
    if type(steps) is list:
        merge_steps_into(histogram, steps)
    else:  # plain, or a text the compact form kept as text (given there as it is)
        merge_text_into(histogram, steps if isinstance(steps, str) else item.get("hist"))


def covered_through(interval: Interval) -> int:
    """The last seq `interval` covers: its own, or a merged window's last."""
    return int(interval.get("mergedThrough") or interval.get("seq") or 0)


def windows(
    intervals: Iterable[Interval], step: int, origin: datetime | None = None
) -> Iterator[list[Interval]]:
    """`intervals` (one run's, in seq order) in groups to merge into windows of `step`
    seconds counted from `origin` (the first interval's start): each group two or more
    mergeable intervals, none already as coarse as `step`. The others are left out."""
    group: list[Interval] = []
    bucket: int | None = None
    for interval in intervals:
        start = interval.get("windowStart")
        if origin is None and isinstance(start, datetime):
            origin = start
        coarse = (interval.get("resolutionSec") or 0) >= step
        if coarse or not mergeable(interval) or origin is None:
            yield from _worth(group)
            group, bucket = [], None
            continue
        index = int((interval["windowStart"] - origin).total_seconds() // step)
        if index != bucket:
            yield from _worth(group)
            group, bucket = [], index
        group.append(interval)
    yield from _worth(group)


def _worth(group: list[Interval]) -> Iterator[list[Interval]]:
    if len(group) > 1:
        yield group


def merge(group: list[Interval], step: int) -> dict[str, Any]:
    """One stored window holding every count of `group` (mergeable, in seq order)."""
    first, last = group[0], group[-1]
    seconds = (last["windowEnd"] - first["windowStart"]).total_seconds() or 1.0
    histogram: Histogram = {}
    for interval in group:
        _add(histogram, interval)
    numbers, text = summary_and_steps_text(histogram)
    requests = sum(int(i.get("intervalRequests") or 0) for i in group)
    failures = sum(int(i.get("intervalFailures") or 0) for i in group)
    window: dict[str, Any] = {
        key: last[key]
        for key in ("loadTestRunId", "tenantId", "envId", "timestamp", "state", "workerCount")
        if key in last
    }
    window.update(
        seq=first["seq"],
        mergedThrough=covered_through(last),
        resolutionSec=step,
        mergedIntervals=sum(int(i.get("mergedIntervals") or 1) for i in group),
        windowStart=first["windowStart"],
        windowEnd=last["windowEnd"],
        intervalSec=seconds,
        percentileWindow="interval",
        intervalRequests=requests,
        intervalFailures=failures,
        totalRPS=requests / seconds,
        failuresPerSec=failures / seconds,
        errorRate=failures / requests if requests else 0.0,
        totalRequests=last.get("totalRequests", 0),
        totalFailures=last.get("totalFailures", 0),
        # The most users the window ran (a chart of users shows its peak, not its end).
        currentUsers=max(int(i.get("currentUsers") or 0) for i in group),
        exceptionCount=sum(int(i.get("exceptionCount") or 0) for i in group),
        gap=False,
        hist=text,
        **interval_latencies(numbers),
        requestStats=_merged_requests(group, seconds),
        metadata={},
        **_server(group),
    )
    return window


def _merged_requests(group: list[Interval], seconds: float) -> list[dict[str, Any]]:
    # Each name's entry and histogram, found with one lookup an item (a prune merges
    # 14,400 intervals × 20 names in a tiny history).
    merged: dict[tuple[str, str], tuple[dict[str, Any], Histogram]] = {}
    for interval in group:
        for item in interval.get("requestStats") or []:
            get = item.get
            key = (str(get("method") or ""), str(get("name") or ""))
            found = merged.get(key)
            if found is None:  # (made once per name, not once per interval: 20 × 12 here)
                found = merged[key] = (
                    {
                        "method": key[0],
                        "name": key[1],
                        "intervalRequests": 0,
                        "intervalFailures": 0,
                        "bytes": 0.0,
                    },
                    {},
                )
            entry, histogram = found
            count = int(get("intervalRequests") or 0)
            entry["intervalRequests"] += count
            entry["intervalFailures"] += int(get("intervalFailures") or 0)
            entry["bytes"] += float(get("avgContentLength") or 0.0) * count
            # Cumulative counts: the latest interval's.
            entry["numRequests"] = get("numRequests", 0)
            entry["numFailures"] = get("numFailures", 0)
            _add(histogram, item)
    items = []
    for entry, histogram in merged.values():
        numbers, text = summary_and_steps_text(histogram)
        requests = entry["intervalRequests"]
        content = entry.pop("bytes")
        entry.update(
            avgResponseTimeMs=numbers["avg"] or 0.0,
            minResponseTimeMs=numbers["min"] or 0.0,
            maxResponseTimeMs=numbers["max"] or 0.0,
            p50ResponseMs=numbers["p50"],
            p90ResponseMs=numbers["p90"],
            p95ResponseMs=numbers["p95"],
            p99ResponseMs=numbers["p99"],
            requestsPerSec=requests / seconds,
            failuresPerSec=entry["intervalFailures"] / seconds,
            avgContentLength=content / requests if requests else 0.0,
            hist=text,
        )
        items.append(entry)
    return items


def _server(group: list[Interval]) -> dict[str, Any]:
    """Server-side values: each name's mean over the seconds it was read; a name no
    interval could read keeps the first reason."""
    sums: dict[str, float] = {}
    weights: dict[str, float] = {}
    missing: dict[str, str] = {}
    for interval in group:
        weight = float(interval.get("intervalSec") or 1.0)
        for name, value in (interval.get("server") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                sums[name] = sums.get(name, 0.0) + float(value) * weight
                weights[name] = weights.get(name, 0.0) + weight
        for name, reason in (interval.get("serverMissing") or {}).items():
            missing.setdefault(name, str(reason))
    server = {name: sums[name] / weights[name] for name in sums}
    return {
        "server": server,
        "serverMissing": {k: v for k, v in missing.items() if k not in server},
    }
