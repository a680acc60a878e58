"""Every stored set of latency figures is in order (issue 20, item 1).

min ≤ p50 ≤ p90 ≤ p95 ≤ p99 ≤ max and min ≤ avg ≤ max, in every code path that writes
statistics: a histogram's summary, a stats-mode interval and its `lastMetrics`, a plugin
window and its `lastMetrics`, Locust's final stats, and a window of a run (what `metrics
show --from/--to` shows and a warm-up's `judgedStats` holds). Locust's payloads are drawn
with any latencies Locust's validation lets through, in any order, so the writers are
proven to store order whatever Locust (or a mix of its windows) says.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import mongomock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmgr.locust.seconds import parse_seconds
from loadmgr.locust.stats import SnapshotBuilder, final_stats
from loadmgr.models import Scope
from loadmgr.models.histogram import summary_and_text
from loadmgr.models.stats.order import REQUEST_KEYS, TOTAL_KEYS, bucket_ms, out_of_order
from loadmgr.service.analysis.windows import Window, window_stats
from loadmgr.service.collection.ending import last_metrics
from loadmgr.service.collection.windows import WindowBuilder
from loadmgr.store import Store
from tests.metrics_data import make_run, make_test, store_all

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
ORIGIN = 1_800_000_000
HIST_KEYS = ("min", "avg", ("p50", "p90", "p95", "p99"), "max")


def assert_ordered(numbers: dict[str, Any], keys: Any, where: str) -> None:
    broken = out_of_order(numbers, keys)
    assert not broken, f"{where}: {', '.join(broken)}"


def assert_snapshot_ordered(snapshot: Any, where: str) -> None:
    for document, what in ((snapshot.model_dump(), where), (last_metrics(snapshot), "lastMetrics")):
        assert_ordered(document, TOTAL_KEYS, what)
        for item in document["requestStats"]:
            assert_ordered(item, REQUEST_KEYS, f"{what} {item['name']}")


# -- Locust's payloads -----------------------------------------------------------------------

latency = st.one_of(
    st.integers(0, 20_000).map(float),
    st.floats(0.0, 20_000.0, allow_nan=False),
)
maybe_latency = st.one_of(st.none(), latency)


@st.composite
def locust_entry(draw: st.DrawFn, name: str, method: str) -> dict[str, Any]:
    requests = draw(st.integers(0, 1000))
    return {
        "method": method,
        "name": name,
        "num_requests": requests,
        "num_failures": draw(st.integers(0, requests)),
        "avg_response_time": draw(latency),
        "min_response_time": draw(latency),
        "max_response_time": draw(latency),
        "median_response_time": draw(latency),
        "response_time_percentile_0.95": draw(latency),
        "response_time_percentile_0.99": draw(latency),
        "avg_content_length": 10.0,
        "total_rps": 1.0,
        "total_fail_per_sec": 0.0,
    }


@st.composite
def locust_payload(draw: st.DrawFn) -> dict[str, Any]:
    entries = [draw(locust_entry(name, "GET")) for name in ("/a", "/b")]
    return {
        "state": draw(st.sampled_from(["running", "stopped"])),
        "user_count": 5,
        "stats": [*entries, draw(locust_entry("Aggregated", ""))],
        "current_response_time_percentiles": {
            "response_time_percentile_0.5": draw(maybe_latency),
            "response_time_percentile_0.95": draw(maybe_latency),
        },
        "errors": [],
    }


def csv_rows(p90: float) -> list[dict[str, str]]:
    return [
        {"Type": method, "Name": name, "90%": str(p90)}
        for method, name in (("GET", "/a"), ("GET", "/b"), ("", "Aggregated"))
    ]


def test_the_issues_final_stats_read_in_order() -> None:
    """A target answering in 121–127 ms: Locust's exact extremes, bucketed percentiles."""
    total = {
        "method": None, "name": "Aggregated", "num_requests": 100, "num_failures": 0,
        "avg_response_time": 123.4, "min_response_time": 121, "max_response_time": 127,
        "median_response_time": 120.84, "response_time_percentile_0.95": 120,
        "response_time_percentile_0.99": 130, "total_rps": 10.0,
    }
    final = final_stats({"state": "stopped", "stats": [total]}, csv_rows(120))
    totals = final["totals"]
    assert_ordered(totals, TOTAL_KEYS, "finalStats.totals")
    # One resolution, Locust's histogram's: 121 and 127 are counted as 120 and 130.
    assert (totals["minResponseMs"], totals["maxResponseMs"]) == (120.0, 130.0)
    assert (totals["p50ResponseMs"], totals["p95ResponseMs"]) == (120.0, 120.0)
    assert totals["p99ResponseMs"] == 130.0 and totals["avgResponseMs"] == 123.4


def test_a_mean_outside_the_bucketed_extremes_is_kept_between_them() -> None:
    # Every request took 126–127 ms: both extremes are counted as 130, above the mean.
    total = {
        "name": "Aggregated", "num_requests": 4, "avg_response_time": 126.5,
        "min_response_time": 126, "max_response_time": 127, "median_response_time": 126,
        "response_time_percentile_0.95": 130, "response_time_percentile_0.99": 130,
    }
    totals = final_stats({"state": "stopped", "stats": [total]})["totals"]
    assert totals["minResponseMs"] == totals["avgResponseMs"] == totals["maxResponseMs"] == 130.0


@settings(max_examples=150, deadline=None)
@given(payload=locust_payload(), p90=latency)
def test_final_stats_are_always_in_order(payload: dict[str, Any], p90: float) -> None:
    final = final_stats(payload, csv_rows(p90))
    assert_ordered(final["totals"], TOTAL_KEYS, "finalStats.totals")
    for item in final["requestStats"]:
        assert_ordered(item, REQUEST_KEYS, f"finalStats {item['name']}")


@settings(max_examples=100, deadline=None)
@given(payloads=st.lists(locust_payload(), min_size=1, max_size=4))
def test_stats_mode_intervals_and_last_metrics_are_always_in_order(
    payloads: list[dict[str, Any]],
) -> None:
    builder = SnapshotBuilder("run", started_at=T0)
    for n, payload in enumerate(payloads):
        snapshot = builder.build(payload, T0 + timedelta(seconds=5 * (n + 1)), force=True)
        assert snapshot is not None
        assert_snapshot_ordered(snapshot, f"interval {n}")


def test_a_stats_mode_interval_takes_its_percentiles_from_one_window() -> None:
    """Rolling p95 above the run's cumulative p99 (latency rose late): no p99 from another
    window beside the rolling ones."""
    total = {
        "name": "Aggregated", "num_requests": 100, "avg_response_time": 40.0,
        "min_response_time": 10, "max_response_time": 500, "median_response_time": 20,
        "response_time_percentile_0.95": 60, "response_time_percentile_0.99": 80,
    }
    payload = {
        "state": "running", "stats": [total], "current_response_time_percentiles": {
            "response_time_percentile_0.5": 300, "response_time_percentile_0.95": 480,
        },
    }
    snapshot = SnapshotBuilder("run", started_at=T0).build(payload, T0 + timedelta(seconds=5))
    assert snapshot is not None
    assert (snapshot.p50ResponseMs, snapshot.p95ResponseMs) == (300.0, 480.0)
    assert snapshot.p99ResponseMs is None


# -- histograms: the plugin's windows, windows of a run --------------------------------------

histogram = st.dictionaries(st.integers(0, 20_000).map(bucket_ms), st.integers(1, 50), max_size=8)


@settings(max_examples=200, deadline=None)
@given(hist=st.dictionaries(st.integers(0, 10**6), st.integers(0, 10**6), max_size=12))
def test_a_histograms_summary_is_always_in_order(hist: dict[int, int]) -> None:
    assert_ordered(summary_and_text(hist)[0], HIST_KEYS, "summary")


@st.composite
def plugin_seconds(draw: st.DrawFn) -> dict[int, list[list[Any]]]:
    seconds: dict[int, list[list[Any]]] = {}
    for t in range(ORIGIN, ORIGIN + draw(st.integers(1, 8))):
        entries = []
        for name in draw(st.lists(st.sampled_from(["/a", "/b"]), unique=True)):
            hist = draw(histogram)
            requests = sum(hist.values())
            pairs = [[ms, n] for ms, n in sorted(hist.items())]
            entries.append(["GET", name, requests, draw(st.integers(0, requests)), pairs])
        seconds[t] = entries
    return seconds


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seconds=plugin_seconds(), interval=st.integers(1, 3))
def test_plugin_windows_and_windows_of_a_run_are_always_in_order(
    seconds: dict[int, list[list[Any]]], interval: int
) -> None:
    end = max(seconds) + 1
    batch = parse_seconds({
        "plugin": "loadmgr", "version": 1, "now": float(end), "complete": end, "oldest": None,
        "test_started": float(ORIGIN), "state": "running", "user_count": 5,
        "worker_count": 1, "more": False,
        "seconds": [{"t": t, "entries": e} for t, e in sorted(seconds.items())],
    })
    builder = WindowBuilder("run", origin=ORIGIN, interval=interval)
    builder.add(batch)
    windows = builder.ready(batch, final=True)
    for snapshot in windows:
        assert_snapshot_ordered(snapshot, f"window {snapshot.seq}")

    store = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    test = make_test()
    run = make_run(test, collectionMode="plugin", collector={"origin": ORIGIN})
    for snapshot in windows:
        snapshot.loadTestRunId = run.id
    store_all(store.db, test, [run], windows)
    for window in (Window(), Window(start=float(interval))):
        stats = window_stats(store, run, window)
        assert_ordered(stats["totals"], TOTAL_KEYS, "window totals")
        for item in stats["requestStats"]:
            assert_ordered(item, REQUEST_KEYS, f"window {item['name']}")
