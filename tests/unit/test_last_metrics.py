"""A run's `lastMetrics` carries the latest interval's per-request list (issue 12)."""

from __future__ import annotations

from datetime import datetime, timezone

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
