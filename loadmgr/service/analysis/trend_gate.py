"""The gate of `runs start --check-trend`: a finished run judged against its test's trend.

By default the run is the newest point of its test's history, and it regressed when it is
in a regime that a regression started (trends.py finds the regimes). With a branch
(`--against-branch main`) a run of another branch, a pull request's, is judged against
that branch's current regime instead, not against its own few runs: the branch's runs
(`ci.branch`) make the history, its change points are searched as `tests trend --branch
main` does, and the regime it is in now (since its newest change point) is the reference.
A step main took earlier is main's, not the pull request's. The run regressed when it is
worse than the regime's mean by more than `minChange` and lies outside the regime's noise:
the two-sided p-value of one more point against the regime (Student's t with the regime's
mean and deviation, widened by the mean's own uncertainty) is below `pValue`.
docs/trends.md says more.
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

from loadmgr.errors import NotFound, ValidationFailed
from loadmgr.models import LoadTest, LoadTestRun, Regression, RunStatus, Verdict
from loadmgr.service.analysis.change_points import require_ruptures
from loadmgr.service.analysis.compare import stats_value, worse_by
from loadmgr.service.analysis.trends import (
    REFERENCE,
    MetricTrend,
    Trend,
    TrendOptions,
    TrendRun,
    build_trend,
    history_runs,
)
from loadmgr.service.judging.verdicts import store_with_verdict

if TYPE_CHECKING:
    from loadmgr.store import Store


def trend_checks(trend: Trend) -> list[dict[str, Any]]:
    """Each metric of the newest run against its trend, shaped as `baselineChecks` items.

    Regressed when the newest run is in a regime that a regression started; otherwise the
    run's value is set against the mean of its regime, for information. After an
    acknowledged change, only the runs from it on are searched (`Trend.judged`).
    """
    allowed = trend.options.detection.min_change
    acked = {"acknowledgedRunId": trend.ack["runId"]} if trend.ack else {}
    return [{**_trend_check(series, allowed), **acked} for series in trend.judged or trend.metrics]


def _trend_check(series: MetricTrend, allowed: float) -> dict[str, Any]:
    change = series.newest_regime_change()
    if change is not None:
        check = Regression(
            series.metric,
            change.before,
            change.after,
            change.worse_by,
            allowed,
            change.regression,
            REFERENCE,
        )
        extra: dict[str, Any] = {"changeRunId": change.run_id, "pValue": change.p_value}
    else:
        mean, value = series.regime_means[-1], series.latest
        worse = worse_by(series.metric, mean, value) if series.searched >= 2 else None
        if worse is not None and math.isinf(worse):
            worse = None  # from a regime of 0 errors, and no change found: not compared
        check = Regression(
            series.metric,
            mean if worse is not None else None,
            value,
            worse,
            allowed,
            False,
            REFERENCE,
        )
        extra = {}
    return {**check.to_document(), **extra, "runs": series.searched}


def apply_trend(store: Store, run: LoadTestRun, options: dict[str, Any]) -> LoadTestRun:
    """Judge a finished run against its test's recent history and make the result part of
    its verdict: `trendChecks` and the recomputed verdict and reasons in one update, like
    `apply_baseline`. `options`: a run's `requestedChecks.trend` (TrendOptions' document).
    """
    return store_with_verdict(store, run, trend_changes(store, run, options))


def trend_changes(store: Store, run: LoadTestRun, options: dict[str, Any]) -> dict[str, Any]:
    """The `trendChecks` of a finished run against its test's recent history, not stored.

    The run may be one whose end is not stored yet (its collector judges it before the
    write, so its verdict is never seen without its checks): it joins the history read."""
    require_ruptures()
    if run.status != RunStatus.FINISHED or not run.finalStats:
        raise ValidationFailed(f"run {run.id} has no final stats to judge against its trend")
    if run.verdict == Verdict.ABORTED:
        raise ValidationFailed(f"run {run.id} was stopped early: its numbers are not comparable")
    test = store.tests.find_by_id(run.loadTestId)
    if test is None:
        raise NotFound(f"the test {run.loadTestId} of run {run.id} no longer exists")
    wanted = TrendOptions.from_document(options)
    if wanted.branch is not None and (run.ci or {}).get("branch") != wanted.branch:
        return against_branch(store, test, run, wanted)  # a PR's run against main's regime
    runs = history_runs(store, test, wanted, until=run.createdAt, ended=run)
    if not runs or runs[-1].id != run.id:
        raise ValidationFailed(f"run {run.id} is not among its test's finished runs")
    return {"trendChecks": trend_checks(build_trend(test, runs, wanted))}


# A regime of fewer runs says nothing of its noise: the run is shown against it, not judged.
MIN_REGIME_RUNS = 3


def against_branch(
    store: Store, test: LoadTest, run: LoadTestRun, options: TrendOptions
) -> dict[str, Any]:
    """The `trendChecks` of `run` against the current regime of `options.branch`."""
    branch = options.branch
    runs = history_runs(store, test, options, until=run.createdAt, ended=run)
    # The run joined as the newest, so comparability is with its own load; then it leaves.
    history = [past for past in runs if past.id != run.id]
    if not any(past.comparable for past in history):
        raise ValidationFailed(
            f"branch {branch!r} has no finished run of test {test.name!r} with this run's "
            "load (users, spawn rate, duration, cluster) to judge it against"
        )
    trend = build_trend(test, history, options)
    stats = runs[-1].stats if runs and runs[-1].id == run.id else {}
    checks = []
    for series in trend.metrics:
        value = stats_value(stats, series.metric, options.request)
        checks.append(_check(series, history, value, options))
    return {"trendChecks": checks}


def current_regime(series: MetricTrend) -> tuple[int, list[float]]:
    """Where the branch's current regime starts (a position in the series) and its values."""
    start = series.changes[-1].index if series.changes else 0
    values = [
        float(value)
        for value, mean in zip(series.values[start:], series.regime_means[start:], strict=True)
        if value is not None and mean is not None
    ]
    return start, values


def point_p_value(regime: list[float], value: float) -> float:
    """Two-sided p-value of `value` as one more point of `regime` (a prediction interval)."""
    mean = statistics.fmean(regime)
    deviation = statistics.stdev(regime)
    if deviation == 0.0:
        return 1.0 if value == mean else 0.0
    from scipy import stats

    t = (value - mean) / (deviation * math.sqrt(1.0 + 1.0 / len(regime)))
    return float(2.0 * stats.t.sf(abs(t), len(regime) - 1))


def _check(
    series: MetricTrend, history: list[TrendRun], value: float | None, options: TrendOptions
) -> dict[str, Any]:
    start, regime = current_regime(series)
    allowed = options.detection.min_change
    extra: dict[str, Any] = {"againstBranch": options.branch, "runs": len(regime)}
    if series.changes:
        extra["changeRunId"] = history[start].id
    if len(regime) < MIN_REGIME_RUNS or value is None or not math.isfinite(value):
        check = Regression(series.metric, None, value, None, allowed, False, REFERENCE)
        return {**check.to_document(), **extra}
    mean = statistics.fmean(regime)
    worse = worse_by(series.metric, mean, value)
    p_value = point_p_value(regime, value)
    regressed = worse is not None and worse > allowed and p_value < options.detection.p_value
    check = Regression(series.metric, mean, value, worse, allowed, regressed, REFERENCE)
    return {**check.to_document(), **extra, "pValue": p_value}
