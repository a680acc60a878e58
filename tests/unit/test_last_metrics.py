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
