"""A test's history as series (one point per finished run), their change points, the gate.

Each point is a run's stored final numbers (`judgedStats` when a warm-up was set, else
`finalStats`), read with a projection of the few fields needed, newest N on the
`(loadTestId, createdAt)` index. Runs of another load than the newest (users, spawn rate,
duration, cluster) are shown but left out of the search: their numbers are not comparable.
The search itself is in `change_points.py`. docs/trends.md says how it all works.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTest, LoadTestRun, RunStatus
from loadmgr.models.documents import as_utc
from loadmgr.models.stats.catalog import TRENDED, named_or_server
from loadmgr.models.stats.stored import find_request, with_server_means
from loadmgr.service.analysis.change_points import (
    Detection,
    detect_shifts,
    parse_fraction,
    parse_sensitivity,
    regimes_of,
    require_ruptures,
)
from loadmgr.service.analysis.compare import stats_value, worse_by
from loadmgr.service.analysis.trend_acks import acknowledged_cut
from loadmgr.service.definitions.tests import get_test

if TYPE_CHECKING:
    from loadmgr.store import Store

# What `--metric` may name: the catalog's trended metrics, and any server metric
# (`server.NAME`: its mean over each run).
TREND_METRICS = TRENDED
DEFAULT_METRICS = ("p95", "rps", "error_rate")
DEFAULT_LAST = 30
MAX_LAST = 100_000
REFERENCE = "its trend"
# What makes two runs' numbers comparable: the load they were run with.
LOAD_FIELDS = ("targetUsers", "spawnRate", "durationSeconds", "locustClusterId")
_READ_FIELDS = ["id", "name", "createdAt", "verdict", "verdictReasons.kind", *LOAD_FIELDS]


@dataclass(frozen=True)
class TrendOptions:
    """Which series of a test, over which runs, searched how."""

    metrics: tuple[str, ...] = DEFAULT_METRICS
    request: str | None = None
    last: int = DEFAULT_LAST
    since: datetime | None = None
    detection: Detection = field(default_factory=Detection)
    branch: str | None = None  # only runs of this branch (`ci.branch`): see branches.py

    def to_document(self) -> dict[str, Any]:
        """As stored in a run's `requestedChecks.trend` (`runs start --check-trend`)."""
        return {
            "metrics": list(self.metrics), "request": self.request,
            "last": self.last,
            **self.detection.to_document(),
            "branch": self.branch,
        }

    @classmethod
    def from_document(cls, doc: Any) -> TrendOptions:
        """Stored options back; what is missing or malformed takes its default."""
        data = doc if isinstance(doc, dict) else {}
        named = [m for m in data.get("metrics") or () if isinstance(m, str)]
        metrics = tuple(m for m in named if named_or_server(m, TREND_METRICS))
        request, branch = (v if isinstance(v := data.get(k), str) else None
                           for k in ("request", "branch"))
        last = data.get("last")
        defaults = Detection()

        def number(key: str, default: float) -> float:
            value = data.get(key)
            if not isinstance(value, int | float) or isinstance(value, bool):
                return default
            return float(value) if math.isfinite(value) and value > 0 else default

        return cls(
            metrics=metrics or DEFAULT_METRICS,
            request=request,
            last=last if isinstance(last, int) and 0 < last <= MAX_LAST else DEFAULT_LAST,
            detection=Detection(
                sensitivity=number("sensitivity", defaults.sensitivity),
                p_value=min(number("pValue", defaults.p_value), 1.0),
                min_change=number("minChange", defaults.min_change),
            ),
            branch=branch,
        )


def trend_options(
    *,
    metrics: Sequence[str] | None = None,
    request: str | None = None,
    last: int = DEFAULT_LAST,
    since: datetime | None = None,
    sensitivity: str | None = None,
    p_value: str | None = None,
    min_change: str | None = None,
    branch: str | None = None,
) -> TrendOptions:
    """The options as given on the command line, checked (ValidationFailed: exit 2)."""
    chosen: list[str] = []
    for text in metrics or ():
        metric = text.strip().lower()
        if not named_or_server(metric, TREND_METRICS):
            raise ValidationFailed(
                f"unknown --metric {text!r} (one of {', '.join(TREND_METRICS)}, server.NAME)"
            )
        if metric not in chosen:
            chosen.append(metric)
    if not 0 < last <= MAX_LAST:
        raise ValidationFailed(f"invalid --last {last} (1 to {MAX_LAST})")
    if request is not None and not request.strip():
        raise ValidationFailed("invalid --request '' (a request as 'GET /path', or its name)")
    detection = Detection()
    if sensitivity is not None:
        detection = replace(detection, sensitivity=parse_sensitivity(sensitivity))
    if p_value is not None:
        detection = replace(detection, p_value=parse_fraction("--p-value", p_value, upper=0.5))
    if min_change is not None:
        change = parse_fraction("--min-change", min_change, upper=100.0)
        detection = replace(detection, min_change=change)
    return TrendOptions(
        metrics=tuple(chosen) or DEFAULT_METRICS,
        request=request.strip() if request else None,
        last=last,
        since=since,
        detection=detection,
        branch=branch,
    )


@dataclass(frozen=True)
class TrendRun:
    """One run of the history: who it is, the load it ran with, its numbers to judge."""

    id: str
    name: str
    createdAt: datetime | None
    load: tuple[Any, ...]
    stats: dict[str, Any]
    comparable: bool = True

    def load_document(self) -> dict[str, Any]:
        return dict(zip(LOAD_FIELDS, self.load, strict=True))


@dataclass(frozen=True)
class ChangePoint:
    """A run where a metric's series moved to a new regime, for good and significantly."""

    metric: str
    index: int  # position of the run in `Trend.runs`
    run_id: str
    before: float
    after: float
    p_value: float

    @property
    def relative_change(self) -> float:
        if self.before == 0:
            return 0.0 if self.after == 0 else math.copysign(math.inf, self.after)
        return (self.after - self.before) / abs(self.before)

    @property
    def worse_by(self) -> float:
        """How much worse (negative: better), by the metric's direction."""
        return worse_by(self.metric, self.before, self.after) or 0.0

    @property
    def regression(self) -> bool:
        """Latency or errors up, RPS down."""
        return self.worse_by > 0

    def to_document(self) -> dict[str, Any]:
        change = self.relative_change
        return {
            "metric": self.metric,
            "runId": self.run_id,
            "position": self.index + 1,
            "before": self.before,
            "after": self.after,
            "relativeChange": None if math.isinf(change) else change,
            "regression": self.regression,
            "pValue": self.p_value,
        }


@dataclass
class MetricTrend:
    """One metric over the runs: values, the mean of each point's regime, the shifts."""

    metric: str
    values: list[float | None]
    regime_means: list[float | None]
    changes: list[ChangePoint]
    searched: int  # points that took part in the search

    @property
    def median(self) -> float | None:
        searched = zip(self.values, self.regime_means, strict=True)
        known = [v for v, mean in searched if v is not None and mean is not None]
        known = known or [v for v in self.values if v is not None]
        return statistics.median(known) if known else None

    @property
    def latest(self) -> float | None:
        return self.values[-1] if self.values else None

    def newest_regime_change(self) -> ChangePoint | None:
        """The change point that started the newest run's regime, if any."""
        if not self.values or self.regime_means[-1] is None or not self.changes:
            return None
        return self.changes[-1]


@dataclass
class Trend:
    """A test's recent history, per metric, with its change points."""

    test: LoadTest
    runs: list[TrendRun]
    metrics: list[MetricTrend]
    options: TrendOptions
    searched: bool = True  # False: shown without a search (ruptures is not installed)
    # What the gate judges when a change was acknowledged (trend_acks.py): the series
    # searched from the newest acknowledged run on (positions of `runs`), and that ack.
    judged: list[MetricTrend] | None = None
    ack: dict[str, Any] | None = None

    @property
    def incomparable(self) -> int:
        return sum(not run.comparable for run in self.runs)

    @property
    def change_points(self) -> list[ChangePoint]:
        return sorted((c for m in self.metrics for c in m.changes), key=lambda c: c.index)

    def regressions_now(self) -> list[ChangePoint]:
        """The metrics whose newest run is in a regime that a regression started (since
        the acknowledged change, when there is one)."""
        found = (m.newest_regime_change() for m in self.judged or self.metrics)
        return [change for change in found if change is not None and change.regression]

    def rows(self) -> list[dict[str, Any]]:
        """One row per run and metric (oldest first): the series as `-o json|csv` print it."""
        starts = {(c.metric, c.index): c for c in self.change_points}
        rows = []
        for position, run in enumerate(self.runs):
            for series in self.metrics:
                change = starts.get((series.metric, position))
                rows.append(
                    {
                        "runId": run.id, "runName": run.name,
                        "createdAt": run.createdAt,
                        "position": position + 1,
                        "metric": series.metric,
                        "request": self.options.request,
                        "value": series.values[position],
                        **run.load_document(),
                        "comparable": run.comparable,
                        "regimeMean": series.regime_means[position],
                        "startsRegime": change is not None,
                        "meanBefore": change.before if change else None,
                        "meanAfter": change.after if change else None,
                        "relativeChange": change and change.to_document()["relativeChange"],
                        "regression": change.regression if change else None,
                        "pValue": change.p_value if change else None,
                    }
                )
        return rows


# -- reading and searching -----------------------------------------------------------------


def measured_the_service(doc: dict[str, Any]) -> bool:
    """Whether a run's numbers are a sample of the service (docs/trends.md, "The series"):
    not when someone stopped it early (`aborted`: another length of load), nor when it was
    judged `inconclusive` because its load generator was saturated or lost a worker (its
    numbers measured the generator). One inconclusive only for want of significance is a
    fine sample and stays."""
    verdict = doc.get("verdict")
    if verdict == "aborted":
        return False
    if verdict != "inconclusive":
        return True
    reasons = doc.get("verdictReasons")
    return not any(
        isinstance(reason, dict) and reason.get("kind") == "generator"
        for reason in (reasons if isinstance(reasons, list) else [])
    )


def history_runs(
    store: Store,
    test: LoadTest,
    options: TrendOptions,
    until: datetime | None = None,
    ended: LoadTestRun | None = None,
) -> list[TrendRun]:
    """The test's runs to show, oldest first, each marked comparable with the newest;
    `ended`: a run whose end is not stored yet, taken as the newest."""
    stats_fields = ["totals"] if options.request is None else ["totals", "requestStats"]
    fields = [*_READ_FIELDS, "serverStats", *(f"{kind}.{part}" for kind in (
        "judgedStats", "finalStats") for part in stats_fields)]
    docs = store.runs.history(test.id, fields, since=options.since, until=until,
                              limit=options.last, branch=options.branch)
    if ended is not None and not any(doc.get("id") == ended.id for doc in docs):
        docs = [ended.model_dump(mode="python"), *docs][: options.last]
    runs = []
    for doc in reversed(docs):
        if not measured_the_service(doc) and (ended is None or doc.get("id") != ended.id):
            continue
        stats = doc.get("judgedStats") or doc.get("finalStats")
        stats = with_server_means(stats, doc.get("serverStats"))
        created = doc.get("createdAt")
        runs.append(
            TrendRun(
                id=str(doc.get("id")),
                name=str(doc.get("name") or ""),
                createdAt=as_utc(created) if isinstance(created, datetime) else None,
                load=tuple(doc.get(key) for key in LOAD_FIELDS),
                stats=stats if isinstance(stats, dict) else {},
            )
        )
    if runs:
        newest = runs[-1].load
        runs = [replace(run, comparable=run.load == newest) for run in runs]
    return runs


def _metric_trend(
    metric: str, runs: list[TrendRun], request: str | None, detection: Detection, search: bool
) -> MetricTrend:
    values = [stats_value(run.stats, metric, request) for run in runs]
    positions = [
        i for i, (run, v) in enumerate(zip(runs, values, strict=True))
        if run.comparable and v is not None and math.isfinite(v)
    ]
    searched = [float(values[i]) for i in positions]  # type: ignore[arg-type]
    shifts = detect_shifts(searched, detection) if search else []
    means: list[float | None] = [None] * len(runs)
    for regime in regimes_of(searched, shifts):
        for k in range(regime.start, regime.end):
            means[positions[k]] = regime.mean
    changes = [
        ChangePoint(metric, positions[s.index], runs[positions[s.index]].id, s.before, s.after,
                    s.p_value)
        for s in shifts
    ]
    return MetricTrend(metric, values, means, changes, len(searched))


def build_trend(
    test: LoadTest, runs: list[TrendRun], options: TrendOptions, *, search: bool = True
) -> Trend:
    """The series of `runs` (oldest first), searched for change points."""
    if options.request is not None and runs:
        if not any(find_request(run.stats, options.request) for run in runs):
            raise ValidationFailed(
                f"no run of test {test.name!r} has a request {options.request!r}",
                hint="name it as 'METHOD /path' (see loadmgr metrics show RUN)",
            )
    metrics = [
        _metric_trend(metric, runs, options.request, options.detection, search)
        for metric in options.metrics
    ]
    trend = Trend(test, runs, metrics, options, searched=search)
    cut = acknowledged_cut(test, runs) if search else None
    if cut is not None:
        trend.judged = [_since(metric, runs, cut[0], options) for metric in options.metrics]
        trend.ack = cut[1].to_document()
    return trend


def _since(metric: str, runs: list[TrendRun], start: int, options: TrendOptions) -> MetricTrend:
    """`metric` searched over `runs[start:]` only, positions kept as in `runs`."""
    later = _metric_trend(metric, runs[start:], options.request, options.detection, True)
    before: list[float | None] = [None] * start
    return MetricTrend(
        metric,
        [stats_value(run.stats, metric, options.request) for run in runs],
        before + later.regime_means,
        [replace(change, index=change.index + start) for change in later.changes],
        later.searched,
    )


def trend_of(store: Store, test_ref: str, options: TrendOptions) -> Trend:
    """`tests trend`: the test's last runs per metric, with their change points.

    Raises ValidationFailed (2) without the `trend` extra, NotFound (4) for the test.
    """
    require_ruptures()
    test = get_test(store, test_ref)
    return build_trend(test, history_runs(store, test, options), options)


def report_trend(store: Store, run: LoadTestRun, last: int = DEFAULT_LAST) -> Trend | None:
    """The recent trend up to `run`, for its report; without ruptures, shown unsearched.

    None when the test is gone or the run is not one of its finished runs.
    """
    from loadmgr.service.analysis.change_points import ruptures_installed

    test = store.tests.find_by_id(run.loadTestId)
    if test is None or run.status != RunStatus.FINISHED or not run.finalStats:
        return None
    options = TrendOptions(last=last)
    runs = history_runs(store, test, options, until=run.createdAt)
    if not runs or runs[-1].id != run.id:
        return None
    return build_trend(test, runs, options, search=ruptures_installed())
