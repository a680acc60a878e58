"""A summary's mean, max and peak come from the same intervals by one rule (issue 20,
item 4): the whole run's from its intervals (kept running in `lastMetrics`), a window's
from the intervals inside it, never a figure from outside. So `rpsMean <= rpsMax` always.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import mongomock
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.models import MetricSnapshot, Scope
from loadmgr.service.analysis import views
from loadmgr.service.collection.ending import metrics_with_peaks
from loadmgr.store import Store
from tests.metrics_data import START, final_stats, make_run, make_test, store_all

# (requests, users) of each interval, and its seconds
_intervals = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 30)), min_size=1, max_size=12)


def _store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def _run_with(
    shape: list[tuple[int, int]], interval: int, locust_rps: float, keep_last: bool = True
) -> tuple[Store, Any, list[MetricSnapshot]]:
    """A plugin run whose intervals have `shape`, its `lastMetrics` as the collector keeps
    it, and Locust's own whole-run mean `locust_rps` in its final stats."""
    test = make_test()
    run = make_run(
        test,
        collectionMode="plugin",
        collector={"origin": int(START.timestamp()), "interval": interval},
        final=final_stats(rps=locust_rps),
    )
    made: list[MetricSnapshot] = []
    last: dict[str, Any] = {}
    total = 0
    for seq, (requests, users) in enumerate(shape, start=1):
        total += requests
        end = START + timedelta(seconds=interval * seq)
        snapshot = MetricSnapshot(
            loadTestRunId=run.id,
            timestamp=end,
            windowStart=end - timedelta(seconds=interval),
            windowEnd=end,
            seq=seq,
            intervalSec=interval,
            intervalRequests=requests,
            totalRPS=requests / interval,
            totalRequests=total,
            currentUsers=users,
            state="running",
            hist=f"10:{requests}" if requests else "",
        )
        made.append(snapshot)
        last = metrics_with_peaks(last, snapshot)
    if keep_last:
        run.lastMetrics = last
    store = _store()
    store_all(store.db, test, [run], made)
    return store, views.find_run(store, run.id), made


def test_a_windows_max_and_users_come_from_the_window() -> None:
    """`--from 5s --to 10s` showed the run's peak, from an interval outside the window."""
    store, run, _ = _run_with([(373, 8), (100, 2), (150, 3), (90, 1)], 5, 35.0)
    data = views.summary(store, run, views.parse_window("5s", "10s"))
    assert data["source"] == "window" and data["window"]["intervals"] == 1
    assert (data["rpsMean"], data["rpsMax"], data["maxUsers"]) == (20.0, 20.0, 2)


def test_a_whole_runs_mean_is_of_its_intervals_not_locusts() -> None:
    """Locust's own mean (requests over its shorter clock) read 16.67 beside a max of 16."""
    store, run, _ = _run_with([(80, 5), (80, 5), (40, 5)], 5, 16.67)
    data = views.summary(store, run)
    assert data["rpsMax"] == 16.0 and data["rpsMean"] == 200 / 15


@settings(max_examples=80, deadline=None)
@given(
    _intervals,
    st.integers(1, 6),
    st.floats(0, 1000),
    st.booleans(),
    st.integers(0, 14),
    st.integers(1, 14),
)
def test_mean_max_and_peak_are_over_the_same_intervals(
    shape: list[tuple[int, int]],
    interval: int,
    locust_rps: float,
    keep_last: bool,
    start: int,
    length: int,
) -> None:
    store, run, made = _run_with(shape, interval, locust_rps, keep_last)
    whole = views.summary(store, run)
    seconds = interval * len(made)
    assert whole["rpsMax"] == max(s.totalRPS for s in made)
    assert whole["maxUsers"] == max(s.currentUsers for s in made)
    assert whole["rpsMean"] == sum(s.intervalRequests for s in made) / seconds
    assert whole["rpsMean"] <= whole["rpsMax"] + 1e-9
    # Any window: its figures from the intervals wholly inside it, and only those.
    low, high = start * interval, (start + length) * interval
    inside = [s for s in made if low <= (s.seq - 1) * interval and s.seq * interval <= high]
    part = views.summary(store, run, views.Window(float(low), float(high)))
    if not inside:
        assert part["requests"] == 0 and part["rpsMax"] is None and part["maxUsers"] is None
        return
    assert part["window"]["intervals"] == len(inside)
    assert part["requests"] == sum(s.intervalRequests for s in inside)
    assert part["rpsMax"] == max(s.totalRPS for s in inside)
    assert part["maxUsers"] == max(s.currentUsers for s in inside)
    assert part["rpsMean"] <= part["rpsMax"] + 1e-9
