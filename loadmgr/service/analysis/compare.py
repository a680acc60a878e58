"""Runs side by side, a test's baseline, and whether a run regressed against it.

Every comparison reads the runs' final stats for the numbers compared, and their steady
samples for whether a change is significant (stored on each run at its end, else read from
its intervals: run_samples.py, samples.py, significance.py). A change is
"worse" by metric: higher latency or error rate, lower RPS; request and failure counts
depend on the run's length, so they are shown but never judged. A regression is worse
than its limit, significant and beyond its floor (regressions.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadmgr.errors import NotFound, ValidationFailed
from loadmgr.models import LoadTest, LoadTestRun, Regression, RunStatus, format_duration
from loadmgr.models.stats.catalog import COMPARED, REGRESSION, check_metric, named_or_server
from loadmgr.models.stats.catalog import metric as catalog_metric
from loadmgr.models.stats.stored import (
    find_request,
    metric_value,
    server_metrics_of,
    stored_number,
)
from loadmgr.service.analysis.regressions import (
    Floor,
    floor_of,
    floors_document,
    floors_from_document,
    judge,
    regression,
    test_fields,
    tested_change,
)
from loadmgr.service.analysis.run_samples import comparison_samples
from loadmgr.service.definitions.tests import get_test, update_test
from loadmgr.service.judging.verdicts import store_with_verdict
from loadmgr.service.runs.lookup import get_run

if TYPE_CHECKING:
    from loadmgr.store import Store

# metric → (key in finalStats.totals, key in a requestStats item, direction), in the order
# of `metrics compare`'s rows: +1 higher is worse, -1 lower is worse, 0 not judged.
COMPARED_METRICS: dict[str, tuple[str, str, int]] = {
    m.name: (m.total_key, m.request_key, m.direction) for m in COMPARED
}
# What `--max-regression` and a baseline check may name: the compared metrics with a
# better side, and any server metric (`server.NAME`, its mean over the run).
REGRESSION_METRICS = REGRESSION
# Runs of the same load differ by a few percent by chance: `metrics compare` and the report
# mark a change as a regression only beyond this, unless a metric's allowance is given.
DEFAULT_TOLERANCE = 0.05
# What `--compare-baseline` judges when no `--max-regression` is given: the two numbers a
# nightly run is usually about. Error rate is left out: from a baseline of 0 errors, any
# single error would be an infinite regression.
DEFAULT_MAX_REGRESSION = {"p95": 0.10, "rps": 0.10}
# One slow request moves a run's max: `metrics compare` shows it but counts it as a
# regression only when asked (`--include-max`, or a `--max-regression max=…`).
OUTLIER_METRICS = tuple(m.name for m in COMPARED if m.outlier)
TOTAL = "Aggregated"

_MAX_REGRESSION = re.compile(r"^\s*(?P<metric>[A-Za-z0-9_.]+)\s*=\s*(?P<value>.*?)\s*$")
_PERCENT = re.compile(r"^(?P<num>[0-9]+(?:\.[0-9]+)?)\s*%$")


def parse_max_regression(text: str) -> tuple[str, float]:
    """`p95=10%` → ("p95", 0.10): p95 may be at most 10% worse than the baseline.

    Raises ValueError naming the bad part.
    """
    match = _MAX_REGRESSION.match(text)
    if match is None:
        raise ValueError(
            f"invalid --max-regression {text!r}: expected METRIC=PERCENT, e.g. p95=10%"
        )
    metric = check_metric(
        match.group("metric"), REGRESSION_METRICS, f"invalid --max-regression {text!r}",
        server=True,
    )
    value = match.group("value")
    percent = _PERCENT.match(value)
    if percent is None:
        raise ValueError(
            f"invalid --max-regression {text!r}: bad value {value!r} "
            "(a percentage such as 10% or 0.5%)"
        )
    fraction = float(percent.group("num")) / 100.0
    if not math.isfinite(fraction):
        raise ValueError(f"invalid --max-regression {text!r}: value out of range")
    return metric, fraction


def parse_max_regressions(texts: list[str]) -> dict[str, float]:
    """Several `--max-regression` options; a later one for a metric replaces an earlier."""
    allowed: dict[str, float] = {}
    for text in texts:
        try:
            metric, fraction = parse_max_regression(text)
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
        allowed[metric] = fraction
    return allowed


def worse_by(metric: str, base: float | None, value: float | None) -> float | None:
    """How much worse `value` is than `base`, as a fraction (negative: better).

    None when either is unknown or the metric is not judged; `inf` when the base is 0
    and the value got worse (an error rate going from 0 to anything).
    """
    direction = catalog_metric(metric).direction
    if base is None or value is None or direction == 0:
        return None
    delta = (value - base) * direction
    if base == 0:
        return 0.0 if delta == 0 else (math.inf if delta > 0 else -math.inf)
    return delta / abs(base)


def relative_change(base: float | None, value: float | None) -> float | None:
    """(value - base) / base; None when unknown or the base is 0."""
    if base is None or value is None or base == 0:
        return None
    return (value - base) / abs(base)


def stats_value(stats: dict[str, Any] | None, metric: str, request: str | None) -> float | None:
    """A metric of stored stats (`finalStats`/`judgedStats`), for the total or one request.

    A request without an `errorRate` (another tool's) has it from its counts."""
    if not stats:
        return None
    if request is not None and metric == "error_rate":
        item = find_request(stats, request)
        if item is not None and item.get("errorRate") is None:
            count = stored_number(item.get("numRequests")) or 0
            return (stored_number(item.get("numFailures")) or 0) / count if count else 0.0
    number = metric_value(stats, metric, request)
    if number is None:
        return None
    # Counts stay integers so `-o csv/json` reads 10000, not 10000.0.
    return int(number) if catalog_metric(metric).unit == "count" else number


# -- metrics compare -----------------------------------------------------------------------


@dataclass
class Comparison:
    """Runs compared with the first: rows (one per request, metric and run) and notes."""

    runs: list[LoadTestRun]
    rows: list[dict[str, Any]]
    different_tests: bool
    without_final: list[str]
    different_load: list[str]

    @property
    def regressions(self) -> list[str]:
        """Each regression once, as the summary names it: `p95 (Aggregated)`, with the
        run's position (`#3`) when more than one run is compared with the first."""
        return self._labels("regression")

    @property
    def inconclusive(self) -> list[str]:
        """Each change beyond its limit that is not significant, labelled as `regressions`."""
        return self._labels("inconclusive")

    def _labels(self, flag: str) -> list[str]:
        several = len(self.runs) > 2
        labels: dict[str, None] = {}
        for row in self.rows:
            if row[flag]:
                where = f" #{row['position'] + 1}" if several else ""
                labels.setdefault(f"{row['metric']} ({row['request']}){where}")
        return list(labels)


def load_differences(runs: list[LoadTestRun]) -> list[str]:
    """What differs in the load of the runs: `users 20 (#1) vs 40 (#2)`, one per aspect."""
    aspects = (
        ("users", lambda run: str(run.targetUsers)),
        ("duration", lambda run: format_duration(run.durationSeconds)),
        ("cluster", lambda run: run.locustClusterId),
    )
    found = []
    for label, of in aspects:
        values = [of(run) for run in runs]
        if len(set(values)) > 1:
            shown = " vs ".join(f"{value} (#{index})" for index, value in enumerate(values, 1))
            found.append(f"{label} {shown}")
    return found


def _requests_of(runs: list[LoadTestRun]) -> list[str]:
    """Request names in the first run's order, then those only later runs have."""
    seen: dict[str, None] = {}
    for run in runs:
        for item in (run.finalStats or {}).get("requestStats") or ():
            seen.setdefault(f"{item.get('method', '')} {item.get('name', '')}".strip())
    return list(seen)


def compare_runs(
    store: Store,
    run_ids: list[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_regression: dict[str, float] | None = None,
    include_max: bool = False,
    floors: dict[str, Floor] | None = None,
) -> Comparison:
    """Each metric of each run against the first run, in absolute and relative terms, with
    whether the change is significant.

    A change is a regression when a judged metric got worse by more than its allowance
    (`max_regression[metric]`, else `tolerance`), as fractions, significantly and beyond
    its floor (`floors[metric]`, else the catalog's); beyond the allowance and the floor
    but not significant, it is `inconclusive`. `max` is judged only with `include_max` or
    its own allowance in `max_regression`.
    """
    if len(run_ids) < 2:
        raise ValidationFailed("give at least two runs to compare")
    runs = [get_run(store, run_id) for run_id in run_ids]
    allowed = max_regression or {}
    rows: list[dict[str, Any]] = []
    # A run with a warm-up is compared on its numbers after it.
    base = runs[0].stats_to_judge
    # Server metrics (their means over the run) are compared on the totals: each one any
    # of the runs read, in the order the runs name them.
    server = list(
        dict.fromkeys(name for run in runs for name in server_metrics_of(run.serverStats))
    )
    requests = _requests_of(runs)
    samples = [
        comparison_samples(store, run, [*COMPARED_METRICS, *server], requests=requests)
        for run in runs
    ]
    for request in [None, *requests]:
        for metric in [*COMPARED_METRICS, *(server if request is None else ())]:
            base_value = stats_value(base, metric, request)
            for position, run in enumerate(runs):
                value = stats_value(run.stats_to_judge, metric, request)
                judged = position and (
                    metric not in OUTLIER_METRICS or include_max or metric in allowed
                )
                worse = worse_by(metric, base_value, value) if judged else None
                change = None if value is None or base_value is None else value - base_value
                tested = (
                    tested_change(samples[0], samples[position], request, metric, change,
                                  base_value)
                    if position
                    else None
                )
                judgement = judge(
                    worse,
                    allowed.get(metric, tolerance),
                    change,
                    floor_of(metric, base_value, floors or {}),
                    tested,
                )
                rows.append(
                    {
                        "request": request or TOTAL,
                        "metric": metric,
                        "runId": run.id,
                        "position": position,
                        "value": value,
                        "baseline": base_value,
                        "change": change,
                        "relativeChange": relative_change(base_value, value),
                        "regression": judgement.regression,
                        **test_fields(tested),
                        "floor": judgement.floor if position else None,
                        "inconclusive": judgement.inconclusive,
                        "note": judgement.note,
                    }
                )
    return Comparison(
        runs=runs,
        rows=rows,
        different_tests=len({run.loadTestId for run in runs}) > 1,
        without_final=[run.id for run in runs if not run.finalStats],
        different_load=load_differences(runs),
    )


# -- baselines -----------------------------------------------------------------------------


def update_baseline(
    store: Store,
    test_ref: str,
    user: str,
    *,
    run_id: str | None = None,
    clear: bool = False,
    floors: dict[str, Floor] | None = None,
) -> LoadTest:
    """`tests baseline`: the floors of its checks (`regressionFloors`, merged over the
    test's), then the baseline run set or cleared (neither: only the floors)."""
    test = get_test(store, test_ref)
    if floors:
        merged = {**floors_from_document(test.regressionFloors), **floors}
        test = update_test(store, user, test.id, {"regressionFloors": floors_document(merged)})
    if clear:
        return clear_baseline(store, test.id, user)
    return set_baseline(store, test.id, run_id, user) if run_id is not None else test


def set_baseline(store: Store, test_ref: str, run_id: str, user: str) -> LoadTest:
    """Mark a finished run of the test as its baseline (stored as `baselineRunId`)."""
    test = get_test(store, test_ref)
    run = get_run(store, run_id)
    if run.loadTestId != test.id:
        raise ValidationFailed(
            f"run {run.id} belongs to another test ({run.loadTestId}), not {test.name!r}"
        )
    if run.status != RunStatus.FINISHED or not run.finalStats:
        raise ValidationFailed(
            f"run {run.id} is {run.status.value}: only a finished run with final stats "
            "can be a baseline"
        )
    # update_test checks the version, so a concurrent change to the test is not lost.
    return update_test(store, user, test.id, {"baselineRunId": run.id})


def clear_baseline(store: Store, test_ref: str, user: str) -> LoadTest:
    """Forget the test's baseline."""
    test = get_test(store, test_ref)
    return update_test(store, user, test.id, {"baselineRunId": None})


def baseline_run(store: Store, test_ref: str) -> LoadTestRun:
    """The test's baseline run; ValidationFailed (2) when none is set, NotFound if gone.

    Call it before starting a `--compare-baseline` run, so a missing baseline is reported
    before any load is put on.
    """
    test = get_test(store, test_ref)
    if not test.baselineRunId:
        raise ValidationFailed(
            f"test {test.name!r} has no baseline",
            hint=f"mark a finished run as its baseline: loadmgr tests baseline {test.name} RUN",
        )
    run = store.runs.find_by_id(test.baselineRunId)
    if run is None:
        raise NotFound(
            f"the baseline run {test.baselineRunId} of test {test.name!r} no longer exists",
            hint="mark another run: loadmgr tests baseline TEST RUN",
        )
    return run


def compare_with_baseline(
    store: Store,
    base: LoadTestRun,
    run: LoadTestRun,
    max_regression: dict[str, float],
    floors: dict[str, Floor] | None = None,
) -> list[Regression]:
    """Each metric in `max_regression` of `run` against `base` (no lookup, no judgment of
    whether `base` is the test's baseline), tested on both runs' steady intervals (a
    regression is significant and beyond its floor: `compare_runs`). An allowance of inf
    compares without judging."""
    unknown = sorted(m for m in max_regression if not named_or_server(m, REGRESSION_METRICS))
    if unknown:
        raise ValidationFailed(f"cannot judge a regression of {', '.join(unknown)}")
    before_samples, after_samples = (
        comparison_samples(store, r, max_regression) for r in (base, run)
    )
    checks = []
    for metric, allowed in max_regression.items():
        before = stats_value(base.stats_to_judge, metric, None)
        after = stats_value(run.stats_to_judge, metric, None)
        worse = worse_by(metric, before, after)
        change = None if before is None or after is None else after - before
        tested = tested_change(before_samples, after_samples, None, metric, change, before)
        judged = judge(worse, allowed, change, floor_of(metric, before, floors or {}), tested)
        checks.append(regression(metric, before, after, worse, allowed, judged, tested))
    return checks


def baseline_floors(test: LoadTest | None, run: LoadTestRun) -> dict[str, Floor]:
    """The floors a run's baseline check uses: its test's (`tests baseline --floor`), with
    those the run was started with (`runs start --floor`) over them."""
    return {
        **floors_from_document(test.regressionFloors if test is not None else None),
        **floors_from_document(run.requestedChecks.get("floors")),
    }


def baseline_checks(
    store: Store, run: LoadTestRun, max_regression: dict[str, float]
) -> list[Regression]:
    """Each metric in `max_regression` of a finished run against its test's baseline."""
    if not run.finalStats:
        raise ValidationFailed(f"run {run.id} has no final stats to compare with a baseline")
    floors = baseline_floors(get_test(store, run.loadTestId), run)
    return compare_with_baseline(
        store, baseline_run(store, run.loadTestId), run, max_regression, floors
    )


def apply_baseline(store: Store, run: LoadTestRun, allowed: dict[str, float]) -> LoadTestRun:
    """Compare a finished run with its test's baseline and make the result part of its
    verdict: the checks (with the limits used and the baseline run compared with) and the
    recomputed verdict and reasons are stored in one update. Returns the updated run.

    `allowed`: metric → the fraction it may be worse (`{"p95": 0.10}`).
    """
    return store_with_verdict(store, run, baseline_changes(store, run, allowed))


def baseline_changes(store: Store, run: LoadTestRun, allowed: dict[str, float]) -> dict[str, Any]:
    """The checks of a finished run against its test's baseline (with the limits used and
    the baseline run compared with), not stored: the fields `apply_baseline` sets."""
    if not run.finalStats:
        raise ValidationFailed(f"run {run.id} has no final stats to compare with a baseline")
    base = baseline_run(store, run.loadTestId)
    floors = baseline_floors(get_test(store, run.loadTestId), run)
    checks = compare_with_baseline(store, base, run, allowed, floors)
    return {
        "baselineChecks": [check.to_document() for check in checks],
        "baselineRunId": base.id,
    }


def check_regressions(
    store: Store, run: LoadTestRun, max_regression: dict[str, float]
) -> list[Regression]:
    """The metrics on which a finished run is worse than its test's baseline by more
    than allowed (`{"p95": 0.10}`: p95 at most 10% worse). Empty: no regression."""
    return [check for check in baseline_checks(store, run, max_regression) if check.regressed]
