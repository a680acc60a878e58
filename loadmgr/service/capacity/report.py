"""`tests capacity TEST`: how much the service takes now, and whether that changed.

The points fitted (service/capacity/usl.py) are, in this order of choice:

- `--run RUN`: the steps of that stepped run (`runs start --steps`);
- else the steps of the newest stepped run among the test's finished runs read;
- else those finished runs themselves, one point each at its users (runs of one load,
  neither aborted nor driven by a locustfile's own shape).

The capacity trend is each stepped run's fitted peak and knee, oldest first, searched for
change points like `tests trend` (service/analysis/change_points.py), so a capacity drop
shows even when the runs' loads differ. `--fail-on-capacity-drop PCT` compares the newest
stepped run's peak with the median of the earlier ones' peaks.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTest, Verdict
from loadmgr.service.capacity.usl import Point, UslFit, fit_usl, knee

if TYPE_CHECKING:
    from loadmgr.store import Store

DEFAULT_LAST = 30
_FIELDS = [
    "id",
    "name",
    "createdAt",
    "verdict",
    "targetUsers",
    "shape",
    "steps",
    "stepWindows",
    "judgedStats.totals",
    "finalStats.totals",
]


@dataclass(frozen=True)
class CapacityOptions:
    """Which runs `tests capacity` reads, and its gate."""

    run: str | None = None
    since: datetime | None = None
    last: int = DEFAULT_LAST
    fail_on_drop: float | None = None  # a fraction: 0.1 for --fail-on-capacity-drop 10%


@dataclass(frozen=True)
class CapacityPoint:
    """One stepped run's capacity in the trend: its peak, its knee, whether it could fit."""

    run_id: str
    name: str
    created_at: datetime | None
    peak_rps: float | None
    peak_users: float | None
    knee_users: float | None
    r2: float | None
    starts_regime: bool = False
    why_not: str | None = None


@dataclass
class Capacity:
    """The fit of the chosen points, and the capacity trend over the stepped runs."""

    test: LoadTest
    source: str  # "steps" (one run's) or "runs" (runs at different loads)
    run_id: str | None  # the stepped run whose steps were fitted
    points: list[Point]
    fit: UslFit
    knee_users: float | None
    trend: list[CapacityPoint] = field(default_factory=list)
    drop: float | None = None  # the newest peak below the earlier ones' median (fraction)

    def curve(self, steps: int = 40) -> list[tuple[float, float]]:
        """The fitted curve from 1 user to past the highest load (for charts)."""
        high = max([p.users for p in self.points] + [self.fit.peak_users or 0.0]) * 1.25
        return [
            (users, self.fit.throughput(users))
            for users in (1 + (high - 1) * i / steps for i in range(steps + 1))
        ]

    def to_document(self) -> dict[str, Any]:
        fit = self.fit
        return {
            "testId": self.test.id,
            "testName": self.test.name,
            "source": self.source,
            "runId": self.run_id,
            "lambda": fit.lam,
            "sigma": fit.sigma,
            "kappa": fit.kappa,
            "r2": fit.r2,
            "peakRps": fit.peak_rps,
            "peakUsers": fit.peak_users,
            "kneeUsers": self.knee_users,
            "points": [
                {
                    "users": p.users,
                    "rps": p.rps,
                    "p95ResponseMs": p.p95,
                    "runId": p.run_id,
                    "step": p.step,
                    "fittedRps": fit.throughput(p.users),
                    "generatorSaturated": p.saturated,
                }
                for p in self.points
            ],
            "trend": [
                {
                    "runId": c.run_id,
                    "runName": c.name,
                    "createdAt": c.created_at,
                    "peakRps": c.peak_rps,
                    "peakUsers": c.peak_users,
                    "kneeUsers": c.knee_users,
                    "r2": c.r2,
                    "startsRegime": c.starts_regime,
                    "notFitted": c.why_not,
                }
                for c in self.trend
            ],
            "drop": self.drop,
        }


def step_points(run_id: str, windows: Any) -> list[Point]:
    """A stepped run's `stepWindows` as points (a step without throughput is left out; a
    step whose generator was saturated is marked, and not fitted)."""
    points = []
    for window in windows if isinstance(windows, list) else []:
        if not isinstance(window, dict):
            continue
        users, rps = _number(window.get("users")), _number(window.get("rps"))
        if users is None or rps is None:
            continue
        step = window.get("step")
        p95 = _number(window.get("p95ResponseMs"))
        step = step if isinstance(step, int) else None
        saturated = window.get("generatorSaturated") is True
        points.append(Point(users, rps, p95, run_id, step, saturated))
    return points


def capacity_of(store: Store, test_ref: str, options: CapacityOptions) -> Capacity:
    """`tests capacity`: NotFound (4) for the test or run, ValidationFailed (2) for a run
    that is not a stepped run of the test, or too few distinct loads to fit."""
    from loadmgr.service.analysis.change_points import require_ruptures
    from loadmgr.service.definitions.tests import get_test

    require_ruptures()  # numpy and scipy: the optional trend extra
    test = get_test(store, test_ref)
    docs = list(
        reversed(store.runs.history(test.id, _FIELDS, since=options.since, limit=options.last))
    )
    docs = [d for d in docs if d.get("verdict") != Verdict.ABORTED.value]
    stepped = [d for d in docs if d.get("stepWindows")]
    trend = capacity_trend(stepped)
    if options.run is not None:
        source, run_id, points = "steps", *_run_steps(store, test, options.run)
    elif stepped:
        run_id = str(stepped[-1].get("id"))
        source, points = "steps", step_points(run_id, stepped[-1].get("stepWindows"))
    else:
        source, run_id, points = "runs", None, _run_points(docs)
    fit = fit_usl(points)
    drop = _drop(trend)
    return Capacity(test, source, run_id, points, fit, knee(points), trend, drop)


def capacity_trend(stepped: list[dict[str, Any]]) -> list[CapacityPoint]:
    """Each stepped run's fit, oldest first, with the change points of its peaks."""
    from loadmgr.service.analysis.change_points import Detection, detect_shifts

    trend = []
    for doc in stepped:
        run_id = str(doc.get("id"))
        points = step_points(run_id, doc.get("stepWindows"))
        created = doc.get("createdAt")
        point = CapacityPoint(
            run_id,
            str(doc.get("name") or ""),
            created if isinstance(created, datetime) else None,
            peak_rps=None,
            peak_users=None,
            knee_users=None,
            r2=None,
        )
        try:
            fit = fit_usl(points)
        except ValidationFailed as exc:
            trend.append(replace(point, why_not=exc.message))
            continue
        trend.append(
            replace(
                point,
                peak_rps=fit.peak_rps,
                peak_users=fit.peak_users,
                knee_users=knee(points),
                r2=fit.r2,
            )
        )
    fitted = [i for i, c in enumerate(trend) if c.peak_rps is not None]
    values = [float(trend[i].peak_rps or 0.0) for i in fitted]
    for shift in detect_shifts(values, Detection()):
        position = fitted[shift.index]
        trend[position] = replace(trend[position], starts_regime=True)
    return trend


def _drop(trend: list[CapacityPoint]) -> float | None:
    """How far the newest stepped run's peak is below the earlier ones' median (a
    fraction; negative: above). None without a newest fit and at least one earlier."""
    peaks = [c.peak_rps for c in trend if c.peak_rps is not None]
    if len(peaks) < 2 or not trend or trend[-1].peak_rps is None:
        return None
    before = statistics.median(peaks[:-1])
    return (before - peaks[-1]) / before if before > 0 else None


def _run_steps(store: Store, test: LoadTest, ref: str) -> tuple[str, list[Point]]:
    from loadmgr.service.runs.lookup import get_run

    run = get_run(store, ref)
    if run.loadTestId != test.id:
        raise ValidationFailed(f"run {run.id} is a run of another test, not of {test.name!r}")
    if not run.stepWindows:
        raise ValidationFailed(
            f"run {run.id} has no steps to fit",
            hint="a stepped run: loadmgr runs start TEST --steps 10,20,40 --step-duration 60s",
        )
    return run.id, step_points(run.id, run.stepWindows)


def _run_points(docs: list[dict[str, Any]]) -> list[Point]:
    """Finished runs of one load each (no shape of their own, no steps) as points."""
    from loadmgr.service.analysis.compare import stats_value

    points = []
    for doc in docs:
        if doc.get("shape") or doc.get("steps"):
            continue
        stats = doc.get("judgedStats") or doc.get("finalStats")
        rps, users = stats_value(stats, "rps", None), _number(doc.get("targetUsers"))
        if users is not None and rps is not None:
            points.append(Point(users, rps, stats_value(stats, "p95", None), str(doc.get("id"))))
    return points


def _number(value: Any) -> float | None:
    """A stored value as a finite number of 0 or more; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None
