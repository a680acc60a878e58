"""A run's server metrics once its end is stored: the holes filled, the summaries, the
thresholds on them judged.

One range query per metric (from the first interval missing it to the last, the interval
as its step) reads every window a live query missed: a Prometheus that was down, slow, or
a collector that died or was taken over leaves no hole once Prometheus answers again.
The points of a range query are the expression evaluated at `start + k * step`, exactly
what an instant query at each window's end gives, so live and filled values are the same
numbers; a window of another length (the run's last, shorter one) is asked on its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loadmgr.errors import LoadmgrError
from loadmgr.models import LoadTestRun, ReasonKind, ThresholdResult, parse_threshold
from loadmgr.models.documents.base import as_utc
from loadmgr.service.collection.end_steps import EndStep
from loadmgr.service.server_metrics.definitions import expression_for

if TYPE_CHECKING:
    from loadmgr.models import ServerMetric
    from loadmgr.prometheus.client import Reading
    from loadmgr.store import Store

Message = Callable[[str], None]
END_BUDGET_SEC = 1.0  # what the end's filling may add to it, with Prometheus answering
# With Prometheus slow or away, what the end waits for it in all, whatever the number of
# metrics: each request gets its source's timeout, cut to what is left of this.
END_WAIT_MAX_SEC = 6.0
SINGLE_WINDOWS_MAX = 5  # windows of another length asked one by one


class ServerMetricsAtEnd(EndStep):
    """Fill the holes, summarise (`serverStats`), judge `server.NAME` thresholds."""

    name = "read the run's server metrics"
    changes_run = True

    def after_end(self, store: Store, run: LoadTestRun, message: Message) -> None:
        if not run.serverMetrics:
            return
        from loadmgr.service.judging.verdicts import store_with_verdict

        windows = store.server_values.windows(run.id)
        now = time.monotonic()
        deadline, limit = now + END_BUDGET_SEC, now + END_WAIT_MAX_SEC
        writes: list[tuple[int, dict[str, float], dict[str, str]]] = []
        for metric in run.serverMetrics:
            _fill(store, metric, windows, (deadline, limit), message, writes)
        store.server_values.set_many(run.id, _by_interval(writes))
        stats = server_stats(run, windows)
        changes: dict[str, Any] = {"serverStats": stats}
        changes.update(judged(run, stats))
        updated = _requested_checks(store, store_with_verdict(store, run, changes), message)
        if updated.verdict != run.verdict:
            # The end told the verdict without the server numbers: tell the one they make.
            first = updated.verdictReasons[0].message if updated.verdictReasons else ""
            verdict = updated.verdict.value if updated.verdict else "none"
            message(
                f"verdict {verdict} with the server metrics read" + (f": {first}" if first else "")
            )


def _requested_checks(store: Store, run: LoadTestRun, message: Message) -> LoadTestRun:
    """The baseline and trend checks the run asked for that name a server metric, judged
    again now that its `serverStats` are stored: they were judged with the end's write,
    before Prometheus was read, and a gate never passes on numbers it did not have."""
    from loadmgr.models import RunStatus
    from loadmgr.models.stats.catalog import is_server_metric
    from loadmgr.service.judging.verdicts import store_with_verdict

    if run.status != RunStatus.FINISHED:
        return run
    changes: dict[str, Any] = {}
    baseline = run.requestedChecks.get("baseline")
    if isinstance(baseline, dict) and any(is_server_metric(str(m)) for m in baseline):
        from loadmgr.service.analysis.compare import baseline_changes

        limits = {
            str(metric): float(value)
            for metric, value in baseline.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        try:
            changes.update(baseline_changes(store, run, limits))
            changes.update(_unread(run, changes["baselineChecks"]))
        except LoadmgrError as exc:
            message(f"the baseline was not judged on the server metrics: {exc.message}")
    trend = run.requestedChecks.get("trend")
    named = trend.get("metrics") if isinstance(trend, dict) else None
    if isinstance(trend, dict) and any(is_server_metric(str(m)) for m in named or ()):
        from loadmgr.service.analysis.trend_gate import trend_changes

        try:
            changes.update(trend_changes(store, run, trend))
        except LoadmgrError as exc:
            message(f"its trend was not judged on the server metrics: {exc.message}")
    return store_with_verdict(store, run, changes) if changes else run


def _unread(run: LoadTestRun, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """A baseline check on a server metric the run could not read is an error with the
    reason, as a threshold on it is: a gate never passes on missing data."""
    stats = run.serverStats or {}
    errors = [
        {
            "kind": ReasonKind.ERROR.value,
            "message": f"{check['metric']} could not be read: "
            f"{stats.get(check['metric'].removeprefix('server.'), {}).get('reason') or 'not read'}",
            "source": "loadmgr",
            "stopReason": run.stopReason.value if run.stopReason else None,
        }
        for check in checks
        if str(check.get("metric", "")).startswith("server.") and check.get("actual") is None
    ]
    if not errors:
        return {}
    return {"verdictReasons": errors[:1] + [r.model_dump(mode="json") for r in run.verdictReasons]}


def _by_interval(
    writes: list[tuple[int, dict[str, float], dict[str, str]]],
) -> list[tuple[int, dict[str, float], dict[str, str]]]:
    """One update per interval with every metric's value or mark (the database's time
    per update is most of the end's, not Prometheus')."""
    merged: dict[int, tuple[dict[str, float], dict[str, str]]] = {}
    for seq, values, missing in writes:
        into = merged.setdefault(seq, ({}, {}))
        into[0].update(values)
        into[1].update(missing)
    return [(seq, values, missing) for seq, (values, missing) in sorted(merged.items())]


def _fill(
    store: Store,
    metric: ServerMetric,
    windows: list[dict[str, Any]],
    deadlines: tuple[float, float],
    message: Message,
    writes: list[tuple[int, dict[str, float], dict[str, str]]],
) -> None:
    """Read the windows missing `metric`: each value or mark set on its window and added
    to `writes`."""
    holes = [w for w in windows if metric.name not in (w.get("server") or {}) and _end(w)]
    if holes:
        _read_holes(store, metric, holes, deadlines, message, writes)


def _read_holes(
    store: Store,
    metric: ServerMetric,
    holes: list[dict[str, Any]],
    deadlines: tuple[float, float],
    message: Message,
    writes: list[tuple[int, dict[str, float], dict[str, str]]],
) -> None:
    from loadmgr.service.server_metrics.sources import client_for, get_source

    try:
        source = get_source(store, metric.source)
        left = deadlines[1] - time.monotonic()
        if left <= 0:
            raise LoadmgrError(
                f"not asked: the end waited {END_WAIT_MAX_SEC:g} s for Prometheus already"
            )
        client = client_for(source, min(source.timeoutSec, left))
    except LoadmgrError as exc:
        _mark(metric, holes, exc.message, writes)
        message(f"server metric {metric.name!r} not read: {exc.message}")
        return
    step = _usual_length(holes)
    regular = [w for w in holes if math.isclose(float(w.get("intervalSec") or 0), step)]
    found: dict[int, Reading] = {}
    try:
        points = client.query_range(
            expression_for(metric, step),
            min(_end(w) for w in regular),
            max(_end(w) for w in regular),
            step,
        )
        for window in regular:
            reading = points.get(round(_end(window), 3))
            if reading is not None:
                found[int(window["seq"])] = reading
        for window in [w for w in holes if int(w["seq"]) not in found][:SINGLE_WINDOWS_MAX]:
            if time.monotonic() > deadlines[0]:
                break
            seconds = float(window.get("intervalSec") or step)
            found[int(window["seq"])] = client.query(
                expression_for(metric, seconds), at=_end(window)
            )
    except LoadmgrError as exc:
        message(f"server metric {metric.name!r}: the end's range query failed: {exc.message}")
        _mark(metric, [w for w in holes if int(w["seq"]) not in found], exc.message, writes)
    for window in holes:
        reading = found.get(int(window["seq"]))
        if reading is None:
            continue
        if reading.value is None:
            _mark(metric, [window], reading.reason or "no value", writes)
        else:
            window.setdefault("server", {})[metric.name] = reading.value
            (window.get("serverMissing") or {}).pop(metric.name, None)
            writes.append((int(window["seq"]), {metric.name: reading.value}, {}))


def _mark(
    metric: ServerMetric,
    windows: list[dict[str, Any]],
    why: str,
    writes: list[tuple[int, dict[str, float], dict[str, str]]],
) -> None:
    for window in windows:
        if metric.name in (window.get("server") or {}):
            continue
        window.setdefault("serverMissing", {})[metric.name] = why
        writes.append((int(window["seq"]), {}, {metric.name: why}))


def _end(window: dict[str, Any]) -> float:
    end = window.get("windowEnd")
    return as_utc(end).timestamp() if isinstance(end, datetime) else 0.0


def _usual_length(windows: list[dict[str, Any]]) -> float:
    lengths = [round(float(w.get("intervalSec") or 0), 3) for w in windows]
    return max(set(lengths), key=lengths.count) or 1.0


def server_stats(run: LoadTestRun, windows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each metric over the run's intervals: avg, min, max, last, p95 of the values read,
    how many intervals had one, how many are missing and the latest reason why."""
    stats: dict[str, dict[str, Any]] = {}
    for metric in run.serverMetrics:
        values = [
            float(w["server"][metric.name])
            for w in windows
            if metric.name in (w.get("server") or {})
        ]
        reasons = [
            str(w["serverMissing"][metric.name])
            for w in windows
            if metric.name in (w.get("serverMissing") or {})
            and metric.name not in (w.get("server") or {})
        ]
        summary: dict[str, Any] = {
            "unit": metric.unit,
            "intervals": len(values),
            "missing": len(reasons),
        }
        if values:
            ordered = sorted(values)
            summary.update(
                avg=sum(values) / len(values),
                min=ordered[0],
                max=ordered[-1],
                last=values[-1],
                p95=ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
            )
        if reasons:
            summary["reason"] = reasons[-1]
        elif not values:
            summary["reason"] = "no interval was read"
        stats[metric.name] = summary
    return stats


def judged(run: LoadTestRun, stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`server.NAME` thresholds judged on each metric's mean over the run; a metric that
    could not be read at all makes the run an error with the reason (a gate never passes
    on missing data)."""
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for item in run.thresholdResults:
        if not item.metric.startswith("server."):
            results.append(item.model_dump())
    for expression in run.thresholds:
        threshold = parse_threshold(expression)
        if not threshold.metric.startswith("server."):
            continue
        summary = stats.get(threshold.metric.removeprefix("server."), {})
        actual = summary.get("avg")
        results.append(ThresholdResult.of(threshold, actual).model_dump())
        if actual is None:
            why = summary.get("reason") or "not read"
            errors.append(
                {
                    "kind": ReasonKind.ERROR.value,
                    "message": f"{threshold.metric} could not be read: {why}",
                    "source": "loadmgr",
                    "stopReason": run.stopReason.value if run.stopReason else None,
                }
            )
    if not any(e for e in errors) and not any(
        t.startswith("server.") for t in (parse_threshold(x).metric for x in run.thresholds)
    ):
        return {}
    reasons = [r.model_dump(mode="json") for r in run.verdictReasons]
    return {"thresholdResults": results, "verdictReasons": errors[:1] + reasons}
