"""Issue 27: each step of a stepped run records its load generator's health (peak CPU,
saturated seconds, saturated or not), and `tests capacity` leaves a saturated step out of
the fit and the knee (its throughput is the generator's ceiling, not the service's)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import mongomock
import pytest

from loadmgr.models import Scope
from loadmgr.service.capacity.report import step_points
from loadmgr.service.capacity.step_windows import step_windows
from loadmgr.service.capacity.usl import Point, fit_usl, knee
from loadmgr.store import Store
from tests.metrics_data import START, make_run, make_test, plugin_snapshots, store_all


def _generator(cpu: float, saturated_sec: float) -> dict[str, Any]:
    return {"workers": 1, "cpuMaxPct": cpu, "cpuAvgPct": cpu, "missingWorkers": 0,
            "saturatedSec": saturated_sec}  # fmt: skip


@pytest.mark.parametrize("plugin_mode", [True, False])
def test_each_step_window_records_its_generator_peak_cpu_and_saturation(plugin_mode):
    db = mongomock.MongoClient()["loadmgr"]
    test = make_test()
    steps = {"users": [5, 10, 20], "stepSec": 10, "settleSec": 2}
    extra = {"collectionMode": "plugin"} if plugin_mode else {}
    run = make_run(test, steps=steps, startedAt=START, **extra)
    intervals = plugin_snapshots(run, 15, interval=2)  # 30 s: three steps of 10 s
    for snapshot in intervals:
        offset = (snapshot.windowEnd - START) / timedelta(seconds=1)  # type: ignore[operator]
        if offset <= 10:
            snapshot.generator = _generator(40.0, 0.0)
        elif offset <= 20:  # one interval hot within the settle time: not counted
            snapshot.generator = _generator(95.0 if offset == 12 else 60.0, 2.0 * (offset == 12))
        else:  # the last step saturated for 2 of its 8 seconds: 25 % ≥ 10 %
            snapshot.generator = _generator(99.0 if offset == 26 else 70.0, 2.0 * (offset == 26))
    store_all(db, test, [run], intervals)
    store = Store(db, Scope(), "mongodb://mock")
    windows = step_windows(store, store.runs.find_by_id(run.id))
    assert [w["generatorPeakCpuPct"] for w in windows] == [40.0, 60.0, 99.0]
    assert [w["saturatedSec"] for w in windows] == [0.0, 0.0, 2.0]
    assert [w["generatorSaturated"] for w in windows] == [False, False, True]
    assert [p.saturated for p in step_points(run.id, windows)] == [False, False, True]


def test_a_step_without_generator_readings_says_none():
    db = mongomock.MongoClient()["loadmgr"]
    test = make_test()
    run = make_run(test, steps={"users": [5], "stepSec": 10, "settleSec": 0})
    store_all(db, test, [run], plugin_snapshots(run, 5, interval=2))
    store = Store(db, Scope(), "mongodb://mock")
    (window,) = step_windows(store, store.runs.find_by_id(run.id))
    assert window["generatorPeakCpuPct"] is None and window["generatorSaturated"] is None


def _usl(n: float) -> float:
    return 10.0 * n / (1 + 0.05 * (n - 1) + 0.001 * n * (n - 1))


def test_saturated_points_are_neither_fitted_nor_read_for_the_knee():
    clean = [Point(n, _usl(n), 50.0 if n < 20 else 90.0) for n in (1, 5, 10, 20, 40)]
    # The generator's ceiling at 80 users: throughput flat, latency high. Fitted, it
    # would pull the peak down and move the knee.
    ceiling = Point(80.0, 5.0, 400.0, saturated=True)
    alone, with_ceiling = fit_usl(clean), fit_usl([*clean, ceiling])
    assert with_ceiling == alone
    assert knee([*clean, ceiling]) == knee(clean) == 10.0
    # Saturated points do not count as loads either.
    few = [Point(1, 10.0), Point(2, 19.0), Point(4, 30.0, saturated=True)]
    with pytest.raises(Exception, match="not enough distinct loads to fit: 2"):
        fit_usl(few)
