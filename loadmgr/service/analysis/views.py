"""What a run measured, as views: summary, timeseries, per request, errors, export rows.

Views read as little as they can: the summary and the per-request and error views read
the run document (its `finalStats`, or `lastMetrics` while it runs), never its intervals;
the timeseries and the export stream intervals from a cursor, and `--points` is reduced
by the database, so memory does not grow with a run's length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTestRun
from loadmgr.models.documents.retention import intervals_resolution
from loadmgr.models.formatting import format_timestamp
from loadmgr.models.stats.catalog import METRICS
from loadmgr.service.analysis.windows import Window, window_stats
from loadmgr.service.runs.lookup import get_run

if TYPE_CHECKING:
    from loadmgr.store import Store

VIEWS = ("summary", "timeseries", "requests", "errors", "scatter", "server")

# One timeseries row: the stored fields, named as stored, so `-o json` is a projection of
# the documents (and costs what a hand-written find with this projection costs).
TIMESERIES_FIELDS = (
    "seq",
    "timestamp",
    "currentUsers",
    "totalRPS",
    "failuresPerSec",
    "p50ResponseMs",
    "p95ResponseMs",
    "intervalRequests",
    "intervalFailures",
    "errorRate",
)
DOWNSAMPLED_FIELDS = (*TIMESERIES_FIELDS, "intervals")

# How a bucket of intervals becomes one row. Rates are recomputed from summed counts and
# seconds (below) so a bucket's RPS is its true average; p95 keeps the bucket's worst so a
# spike stays visible at any zoom; users keep the highest count reached.
_BUCKET_ACCUMULATORS: dict[str, dict[str, Any]] = {
    "currentUsers": {"$max": "$currentUsers"},
    "intervalRequests": {"$sum": "$intervalRequests"},
    "intervalFailures": {"$sum": "$intervalFailures"},
    "seconds": {"$sum": "$intervalSec"},
    "meanRPS": {"$avg": "$totalRPS"},
    "meanFailuresPerSec": {"$avg": "$failuresPerSec"},
    "p50ResponseMs": {"$avg": "$p50ResponseMs"},
    "p95ResponseMs": {"$max": "$p95ResponseMs"},
}

EXPORT_FIELDS = (
    "loadTestRunId",
    "seq",
    "timestamp",
    "intervalSec",
    "state",
    "currentUsers",
    "workerCount",
    "totalRequests",
    "totalFailures",
    "intervalRequests",
    "intervalFailures",
    "totalRPS",
    "failuresPerSec",
    "errorRate",
    "avgResponseMs",
    "minResponseMs",
    "maxResponseMs",
    "p50ResponseMs",
    "p95ResponseMs",
    "p99ResponseMs",
    "final",
    "reset",
)
REQUEST_EXPORT_FIELDS = (
    "loadTestRunId",
    "seq",
    "timestamp",
    "method",
    "name",
    "numRequests",
    "numFailures",
    "intervalRequests",
    "intervalFailures",
    "requestsPerSec",
    "failuresPerSec",
    "avgResponseTimeMs",
    "minResponseTimeMs",
    "maxResponseTimeMs",
    "p50ResponseMs",
    "p95ResponseMs",
    "p99ResponseMs",
    "avgContentLength",
)
_REQUEST_FIELDS = REQUEST_EXPORT_FIELDS[3:]

# The summary's peak RPS and users come from the run document when the collector keeps
# them (`lastMetrics.maxRPS`/`maxUsers`); for runs recorded before it did, the database
# computes them, but only for runs short enough that this stays cheap.
PEAK_SCAN_MAX_INTERVALS = 1_000


def iso(value: Any) -> Any:
    """A stored date as every output writes dates (`format_timestamp`); others as they are."""
    return format_timestamp(value) if isinstance(value, datetime) else value


def check_view(view: str) -> str:
    cleaned = view.strip().lower()
    if cleaned not in VIEWS:
        raise ValidationFailed(f"invalid --view {view!r} (one of {', '.join(VIEWS)})")
    return cleaned


def parse_window(start: str | None, end: str | None) -> Window:
    """`--from`/`--to` offsets into a run (`30s`, `2m`, `90`)."""
    from loadmgr.models import parse_duration

    offsets: list[float | None] = []
    for flag, text in (("--from", start), ("--to", end)):
        if text is None:
            offsets.append(None)
            continue
        try:
            offsets.append(float(parse_duration(text)))
        except ValueError as exc:
            raise ValidationFailed(f"invalid {flag} {text!r}: {exc}") from None
    return Window(offsets[0], offsets[1])


def check_points(points: int | None) -> int | None:
    if points is not None and points < 1:
        raise ValidationFailed(f"invalid --points {points}: at least 1")
    return points


# -- summary -------------------------------------------------------------------------------


def _duration(run: LoadTestRun) -> float | None:
    if run.startedAt is None:
        return None
    end = run.finishedAt
    if end is None:
        end = datetime.now(timezone.utc) if run.status.is_active else None
    return None if end is None else max(0.0, (end - run.startedAt).total_seconds())


# A run's requests over its seconds (`_mean_rps`), summed by the database.
_MEAN_SUMS: dict[str, dict[str, Any]] = {
    "requests": {"$sum": "$intervalRequests"},
    "seconds": {"$sum": {"$cond": [{"$gt": ["$intervalSec", 0]}, "$intervalSec", 0]}},
    "counted": {"$sum": {"$cond": [{"$gt": ["$intervalSec", 0]}, "$intervalRequests", 0]}},
}


class _Scan:
    """What a summary asks of a short old run's intervals (its peaks, its mean rate's
    sums): asked once, in one pass, by whichever needs it first."""

    def __init__(self, store: Store, run: LoadTestRun) -> None:
        self.store, self.run = store, run
        self.found: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        if self.found is None:
            fields = ["totalRPS", "currentUsers"]
            self.found = self.store.metrics.peaks(self.run.id, fields, _MEAN_SUMS)
        return self.found


def _peaks(run: LoadTestRun, scan: _Scan) -> tuple[float | None, float | None]:
    """Peak RPS and users: stored by the collector, else computed for short runs only."""
    last = run.lastMetrics or {}
    totals = (run.finalStats or {}).get("totals") or {}
    rps = last.get("maxRPS", totals.get("maxRps"))
    users = last.get("maxUsers")
    if rps is not None and users is not None:
        return float(rps), float(users)
    # The run's own length says how many intervals it has, without asking the database
    # (which, on a server without the index, would scan them just to count).
    interval = float((run.collector or {}).get("interval") or 5.0)
    if run.durationSeconds / max(interval, 1.0) > PEAK_SCAN_MAX_INTERVALS:
        return rps, users
    found = scan()
    return (
        float(rps) if rps is not None else found["totalRPS"],
        float(users) if users is not None else found["currentUsers"],
    )


def _mean_rps(run: LoadTestRun, fallback: Any, scan: _Scan) -> Any:
    """The run's mean rate by the rule of its peaks: its intervals' requests over their
    seconds. Kept by the collector (`lastMetrics.meanRPS`); summed by the database for
    short runs recorded before it was; else `fallback` (Locust's own, for long old runs)."""
    last = run.lastMetrics or {}
    if last.get("meanRPS") is not None:
        return float(last["meanRPS"])
    interval = float((run.collector or {}).get("interval") or 5.0)
    if run.durationSeconds / max(interval, 1.0) > PEAK_SCAN_MAX_INTERVALS:
        return fallback
    sums = scan()
    seconds = float(sums.get("seconds") or 0)
    return int(sums.get("counted") or 0) / seconds if seconds > 0 else fallback


def summary(store: Store, run: LoadTestRun, window: Window | None = None) -> dict[str, Any]:
    """Load, volume, rates, latency, verdict and thresholds of one run, from its document;
    with a `window`, volume, rates and latency are those of that part of the run."""
    final = run.finalStats or {}
    totals = final.get("totals") or {}
    part = None
    if window is not None and not window.whole:
        part = window_stats(store, run, window, per_request=False)
        totals = part["totals"]
    last = run.lastMetrics or {}
    duration = _duration(run)
    # Mean, max and peak users over the same intervals, by one rule (docs/metrics.md,
    # "Rates of a run or a window"): a window's from its intervals only.
    scan = _Scan(store, run)  # the peaks and the mean rate of an old run: one pass
    if part is not None:
        peak_rps, peak_users = part["peaks"]["rps"], part["peaks"]["users"]
    else:
        peak_rps, peak_users = _peaks(run, scan)
    data: dict[str, Any] = {
        "runId": run.id,
        "name": run.name,
        "loadTestId": run.loadTestId,
        "testName": run.testName,
        "status": run.status.value,
        "verdict": run.verdict.value if run.verdict else None,
        "verdictReasons": [r.model_dump(mode="json") for r in run.verdictReasons],
        "stopReason": run.stopReason.value if run.stopReason else None,
        "startedAt": iso(run.startedAt),
        "finishedAt": iso(run.finishedAt),
        "durationSec": None if duration is None else round(duration, 3),
        "targetUsers": run.targetUsers,
        "maxUsers": None if peak_users is None else int(peak_users),
        # What retention left of its intervals: what a window's numbers are read from.
        "intervals": intervals_resolution(run.intervalsKept),
    }
    if part is not None or totals:
        if part is None:
            data["source"] = "final"
        else:
            data.update(source="window", window=part["window"], exactPercentiles=part["exact"])
        data.update(
            requests=totals.get("requests"),
            failures=totals.get("failures"),
            errorRate=totals.get("errorRate"),
            rpsMean=totals.get("rps") if part else _mean_rps(run, totals.get("rps"), scan),
            rpsMax=peak_rps,
            **{key: totals.get(key) for key in LATENCY_KEYS},
        )
    elif last:
        requests = int(last.get("totalRequests") or 0)
        failures = int(last.get("totalFailures") or 0)
        data.update(
            source="lastInterval",
            requests=requests,
            failures=failures,
            errorRate=failures / requests if requests else 0.0,
            rpsMean=_mean_rps(run, requests / duration if duration else None, scan),
            rpsMax=peak_rps,
            **{key: last.get(key) for key in LATENCY_KEYS},
        )
    else:
        data.update(
            source="none",
            requests=0,
            failures=0,
            errorRate=None,
            rpsMean=None,
            rpsMax=None,
            **dict.fromkeys(LATENCY_KEYS),
        )
    data["thresholdResults"] = [r.model_dump(mode="json") for r in run.thresholdResults]
    data["baselineChecks"] = run.baselineChecks
    data["trendChecks"] = run.trendChecks
    return data


# A run's latencies in its summary and export rows: every latency of the catalog, in its order.
LATENCY_KEYS = tuple(m.total_key for m in METRICS if m.unit == "ms")


# -- timeseries ----------------------------------------------------------------------------


@dataclass
class Series:
    """Timeseries rows (an iterator: consume once) and how they were reduced."""

    rows: Iterator[dict[str, Any]]
    step: int  # intervals per row; 1 when not downsampled
    last_seq: int | None  # known only when downsampling was considered

    @property
    def fields(self) -> tuple[str, ...]:
        # Asked for at most some points, rows say how many intervals each merges (1 when
        # the run had few enough): the columns follow the options, never the data.
        return TIMESERIES_FIELDS if self.last_seq is None else DOWNSAMPLED_FIELDS


def _plain_rows(store: Store, run_id: str, *, counted: bool = False) -> Iterator[dict[str, Any]]:
    projection = dict.fromkeys(TIMESERIES_FIELDS, True)
    for doc in store.metrics.iter_for_run(run_id, projection):
        # Rebuilt in a fixed order (and with every field, for documents that lack some),
        # so rows read the same whether or not they were downsampled.
        row = {key: doc.get(key) for key in TIMESERIES_FIELDS}
        row["timestamp"] = iso(row["timestamp"])
        if counted:
            row["intervals"] = 1
        yield row


def _bucket_row(bucket: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    seconds = float(bucket.pop("seconds", 0) or 0)
    mean_rps = bucket.pop("meanRPS", None)
    mean_failures = bucket.pop("meanFailuresPerSec", None)
    requests = int(bucket.get("intervalRequests") or 0)
    failures = int(bucket.get("intervalFailures") or 0)
    row = {
        "seq": bucket.get("seq"),
        "timestamp": iso(bucket.get("timestamp")),
        "currentUsers": bucket.get("currentUsers"),
        "totalRPS": requests / seconds if seconds > 0 else mean_rps,
        "failuresPerSec": failures / seconds if seconds > 0 else mean_failures,
        "p50ResponseMs": bucket.get("p50ResponseMs"),
        "p95ResponseMs": bucket.get("p95ResponseMs"),
        "intervalRequests": requests,
        "intervalFailures": failures,
        "errorRate": failures / requests if requests else 0.0,
        "intervals": bucket.get("intervals"),
    }
    row.update((key, bucket.get(key)) for key in extra)
    return row


def timeseries(
    store: Store,
    run_id: str,
    points: int | None = None,
    extra: Mapping[str, dict[str, Any]] | None = None,
) -> Series:
    """A run's intervals, one row each, or at most `points` rows merged by the database;
    `extra`: more `$group` accumulators of the merge, each row's under its name (merged
    rows only: one pass over the intervals serves another chart too)."""
    check_points(points)
    if points is None:
        return Series(_plain_rows(store, run_id), 1, None)
    last_seq = store.metrics.last_seq(run_id)
    if last_seq <= points:
        return Series(_plain_rows(store, run_id, counted=True), 1, last_seq)
    step = math.ceil(last_seq / points)
    more = extra or {}
    buckets = store.metrics.downsampled(run_id, step, {**_BUCKET_ACCUMULATORS, **more})
    return Series((_bucket_row(b, more) for b in buckets), step, last_seq)


# -- per request and errors ----------------------------------------------------------------


def request_rows(
    store: Store, run: LoadTestRun, window: Window | None = None
) -> list[dict[str, Any]]:
    """The per-request table: the final stats (or a window's), or the latest interval
    while it runs."""
    items = (run.finalStats or {}).get("requestStats")
    if window is not None and not window.whole:
        items = window_stats(store, run, window)["requestStats"]
    if items is None:
        latest = store.metrics.latest(run.id) or {}
        items = latest.get("requestStats") or []
    rows = []
    for item in items:
        row = dict(item)
        requests = int(row.get("numRequests") or 0)
        row.setdefault(
            "errorRate", int(row.get("numFailures") or 0) / requests if requests else 0.0
        )
        rows.append(row)
    return sorted(rows, key=lambda r: (str(r.get("name", "")), str(r.get("method", ""))))


def error_rows(run: LoadTestRun) -> list[dict[str, Any]]:
    """Each failure message with its request and count, most frequent first.

    Locust reports failures by message only in its final stats: a running run has none yet.
    """
    errors = (run.finalStats or {}).get("errors") or []
    rows = [
        {
            "method": e.get("method", ""),
            "name": e.get("name", ""),
            "error": e.get("error", ""),
            "occurrences": int(e.get("occurrences") or 0),
        }
        for e in errors
    ]
    return sorted(rows, key=lambda r: (-r["occurrences"], r["name"], r["error"]))


# -- export --------------------------------------------------------------------------------


def _flat_interval(doc: dict[str, Any]) -> dict[str, Any]:
    metadata = doc.pop("metadata", None) or {}
    doc["timestamp"] = iso(doc.get("timestamp"))
    doc["final"] = bool(metadata.get("final"))
    doc["reset"] = bool(metadata.get("reset"))
    return {key: doc.get(key) for key in EXPORT_FIELDS}


def export_intervals(store: Store, run_id: str) -> Iterator[dict[str, Any]]:
    """Every interval of a run, flattened to EXPORT_FIELDS, streamed."""
    projection = dict.fromkeys(EXPORT_FIELDS[:-2], True) | {"metadata": True}
    for doc in store.metrics.iter_for_run(run_id, projection):
        yield _flat_interval(doc)


def export_request_intervals(store: Store, run_id: str) -> Iterator[dict[str, Any]]:
    """One row per interval and request, flattened to REQUEST_EXPORT_FIELDS, streamed."""
    projection = {"loadTestRunId": True, "seq": True, "timestamp": True, "requestStats": True}
    # Per-request documents are the bulk of a run: smaller batches keep memory flat.
    for doc in store.metrics.iter_for_run(run_id, projection, batch_size=200):
        head = {
            "loadTestRunId": doc.get("loadTestRunId"),
            "seq": doc.get("seq"),
            "timestamp": iso(doc.get("timestamp")),
        }
        for item in doc.get("requestStats") or ():
            yield {**head, **{key: item.get(key) for key in _REQUEST_FIELDS}}


def find_run(store: Store, run_id: str) -> LoadTestRun:
    """The run, or NotFound (exit 4); ids are matched as plain strings."""
    return get_run(store, run_id)
