"""A run's `lastMetrics` carries the latest interval's per-request list (issue 12)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.models import MetricSnapshot, RequestStats
from loadmgr.service.collection import last_metrics


def test_last_metrics_has_request_stats_without_histograms() -> None:
    snapshot = MetricSnapshot(
        loadTestRunId="r1",
        timestamp=datetime(2026, 12, 2, tzinfo=timezone.utc),
        seq=3,
        totalRPS=12.5,
        hist="3:10",
        requestStats=[
            RequestStats(method="GET", name="/a", numRequests=10, hist="3:10", intervalRequests=4),
            RequestStats(method="POST", name="/b", numRequests=2, numFailures=1),
        ],
    )
    last = last_metrics(snapshot)
    assert last["totalRPS"] == 12.5 and last["seq"] == 3
    assert "hist" not in last and "loadTestRunId" not in last
    assert [(r["method"], r["name"], r["numRequests"]) for r in last["requestStats"]] == [
        ("GET", "/a", 10),
        ("POST", "/b", 2),
    ]
    assert all("hist" not in r for r in last["requestStats"])
    assert last["requestStats"][0]["intervalRequests"] == 4


def test_metrics_with_peaks_keeps_the_runs_peaks() -> None:
    from loadmgr.service.collection.ending import metrics_with_peaks

    def at(seq: int, rps: float, users: int) -> MetricSnapshot:
        when = datetime(2026, 12, 2, tzinfo=timezone.utc)
        return MetricSnapshot(
            loadTestRunId="r1", timestamp=when, seq=seq, totalRPS=rps, currentUsers=users
        )

    first = metrics_with_peaks({}, at(1, 40.0, 5))
    last = metrics_with_peaks(first, at(2, 10.0, 0))
    assert last["seq"] == 2 and last["totalRPS"] == 10.0
    assert last["maxRPS"] == 40.0 and last["maxUsers"] == 5


# -- issue 20, item 2: totals and the error rate agree (cumulative) ---------------------------

_counts = st.lists(
    st.tuples(st.integers(0, 500), st.integers(0, 500)).map(lambda t: (max(t), min(t))),
    min_size=1,
    max_size=8,
)


def _interval(seq: int, requests: int, failures: int, total: tuple[int, int]) -> MetricSnapshot:
    return MetricSnapshot(
        loadTestRunId="r1",
        timestamp=datetime(2026, 12, 2, tzinfo=timezone.utc),
        seq=seq,
        intervalSec=1.0,
        totalRPS=float(requests),
        failuresPerSec=float(failures),
        intervalRequests=requests,
        intervalFailures=failures,
        errorRate=failures / requests if requests else 0.0,
        totalRequests=total[0],
        totalFailures=total[1],
    )


@settings(max_examples=200, deadline=None)
@given(_counts, st.integers(0, 50), st.integers(0, 50))
def test_last_metrics_error_rate_is_the_runs_so_far_and_the_intervals_is_named(
    counts: list[tuple[int, int]], late_requests: int, late_failures: int
) -> None:
    """`errorRate` is totalFailures/totalRequests after every interval and at the end (the
    Go control plane's meaning); the latest interval's own rate is `intervalErrorRate`."""
    from loadmgr.service.collection.ending import ended_last_metrics, metrics_with_peaks

    last: dict[str, Any] = {}
    requests = failures = 0
    for seq, (req, fail) in enumerate(counts, start=1):
        requests, failures = requests + req, failures + fail
        last = metrics_with_peaks(last, _interval(seq, req, fail, (requests, failures)))
        assert last["totalRequests"] == requests and last["totalFailures"] == failures
        assert last["errorRate"] == (failures / requests if requests else 0.0)
        assert last["intervalErrorRate"] == (fail / req if req else 0.0)
    # Locust's final totals may count requests no interval held: they win, and agree.
    late_failures = min(late_failures, late_requests)
    total_req, total_fail = requests + late_requests, failures + late_failures
    final = {
        "totals": {
            "requests": total_req,
            "failures": total_fail,
            "errorRate": total_fail / total_req if total_req else 0.0,
        },
        "userCount": 0,
        "state": "stopped",
    }
    ended = ended_last_metrics(last, final)
    assert ended["totalRequests"] == total_req and ended["totalFailures"] == total_fail
    assert ended["errorRate"] == (total_fail / total_req if total_req else 0.0)
    assert ended["intervalErrorRate"] == last["intervalErrorRate"]


# -- issue 26: the heartbeat's lastMetrics without work it did not need -----------------------


def _dumped_then_bounded(snapshot: MetricSnapshot) -> dict[str, Any]:
    """`last_metrics` as it was: every item dumped, then the busiest kept."""
    from loadmgr.service.collection.fitting import MAX_LIVE_REQUESTS, bounded_stats

    every = {"loadTestRunId", "tenantId", "envId", "metadata", "hist"}
    metrics = snapshot.model_dump(
        mode="python",
        exclude={**dict.fromkeys(every, True), "requestStats": {"__all__": {"hist"}}},
    )
    return bounded_stats(metrics, MAX_LIVE_REQUESTS) or metrics


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 6), max_size=260), st.integers(1, 30))
def test_last_metrics_keeps_the_busiest_requests_as_before_and_the_run_takes_it_as_is(
    counts: list[int], seq: int
) -> None:
    # Few distinct counts: many ties, which keep their order (the first ones win).
    from loadmgr.models import LoadTestRun, RunStatus
    from loadmgr.service.collection.ending import metrics_with_peaks

    snapshot = MetricSnapshot(
        loadTestRunId="r1",
        timestamp=datetime(2026, 12, 2, tzinfo=timezone.utc),
        seq=seq,
        intervalSec=5.0,
        hist="3:1",
        requestStats=[
            RequestStats(method="GET", name=f"/{i}", numRequests=n, hist=f"{n}:1")
            for i, n in enumerate(counts)
        ],
    )
    last = last_metrics(snapshot)
    assert list(last.items()) == list(_dumped_then_bounded(snapshot).items())
    # What the collector keeps without validation is what validating it would give.
    metrics = metrics_with_peaks({"maxRPS": 3.0, "sumIntervalSec": 5.0}, snapshot)
    run = LoadTestRun(
        loadTestId="t", targetUsers=1, spawnRate=1.0, durationSeconds=60, status=RunStatus.RUNNING
    )
    kept = run.model_copy()
    kept.keep_last_metrics(metrics)
    run.lastMetrics = metrics
    assert kept.lastMetrics == run.lastMetrics == metrics
    assert kept.model_dump() == run.model_dump() and kept.model_fields_set == run.model_fields_set
