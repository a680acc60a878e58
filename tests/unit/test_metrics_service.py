"""Metric views on mongomock: summary, timeseries (and its downsampling), requests, export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mongomock
import pytest

from loadmgr.errors import NotFound, ValidationFailed
from loadmgr.models import Scope
from loadmgr.service.analysis import views as metrics
from loadmgr.store import Store
from tests.metrics_data import REQUESTS, final_stats, make_run, make_test, snapshots, store_all


@pytest.fixture
def client() -> mongomock.MongoClient:
    return mongomock.MongoClient()


@pytest.fixture
def store(client: mongomock.MongoClient) -> Store:
    made = Store(client["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def _forbid_interval_reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("the summary must not read the run's intervals")

    for name in ("iter_for_run", "downsampled", "peaks", "find_for_run", "aggregate", "latest"):
        monkeypatch.setattr(store.metrics, name, refuse)


def test_summary_reads_the_run_document_only(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = make_test()
    run = make_run(test, lastMetrics={"maxRPS": 140.0, "maxUsers": 20, "meanRPS": 100.0})
    store_all(store.db, test, [run], snapshots(run, 50))
    _forbid_interval_reads(store, monkeypatch)
    monkeypatch.setattr(store.metrics, "last_seq", lambda *_: pytest.fail("no interval read"))
    summary = metrics.summary(store, metrics.find_run(store, run.id))
    assert summary["source"] == "final"
    assert (summary["requests"], summary["failures"], summary["errorRate"]) == (10_000, 100, 0.01)
    assert (summary["rpsMean"], summary["rpsMax"], summary["maxUsers"]) == (100.0, 140.0, 20)
    assert summary["p95ResponseMs"] == 120.0 and summary["p99ResponseMs"] == 250.0
    assert summary["durationSec"] == 600.0
    assert summary["startedAt"] == "2026-03-01T12:00:00.000Z"


def test_summary_computes_peaks_for_short_runs_recorded_without_them(store: Store) -> None:
    test = make_test()
    run = make_run(test)
    store_all(store.db, test, [run], snapshots(run, 30, requests_per_interval=600))
    summary = metrics.summary(store, metrics.find_run(store, run.id))
    assert summary["rpsMax"] == 120.0
    assert summary["maxUsers"] == 20


def test_summary_of_a_long_old_run_does_not_scan_its_intervals(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = make_test()
    run = make_run(test, durationSeconds=5 * (metrics.PEAK_SCAN_MAX_INTERVALS + 1))
    store_all(store.db, test, [run])
    _forbid_interval_reads(store, monkeypatch)
    monkeypatch.setattr(store.metrics, "last_seq", lambda *_: pytest.fail("counted"))
    summary = metrics.summary(store, run)
    assert summary["rpsMax"] is None and summary["rpsMean"] == 100.0


def test_summary_of_a_running_run_uses_last_metrics(store: Store) -> None:
    test = make_test()
    run = make_run(
        test,
        status="Running",
        finalStats=None,
        finishedAt=None,
        lastMetrics={"totalRequests": 400, "totalFailures": 4, "p95ResponseMs": 130.0},
    )
    store_all(store.db, test, [run])
    summary = metrics.summary(store, run)
    assert summary["source"] == "lastInterval"
    assert (summary["requests"], summary["failures"], summary["errorRate"]) == (400, 4, 0.01)
    assert summary["p95ResponseMs"] == 130.0
    assert summary["durationSec"] is not None and summary["durationSec"] > 0


def test_summary_of_a_pending_run_is_empty_not_an_error(store: Store) -> None:
    test = make_test()
    run = make_run(test, status="Pending", finalStats=None, startedAt=None, finishedAt=None)
    summary = metrics.summary(store, run)
    assert summary["source"] == "none" and summary["requests"] == 0
    assert summary["durationSec"] is None


def test_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        metrics.find_run(store, "missing")
    with pytest.raises(NotFound):
        metrics.find_run(store, '{"$gt": ""}')


@pytest.mark.parametrize("view", ["", "chart", "SUMMARY "])
def test_check_view(view: str) -> None:
    if view.strip().lower() in metrics.VIEWS:
        assert metrics.check_view(view) == "summary"
    else:
        with pytest.raises(ValidationFailed, match="--view"):
            metrics.check_view(view)


@pytest.mark.parametrize("points", [0, -1])
def test_points_must_be_positive(store: Store, points: int) -> None:
    with pytest.raises(ValidationFailed, match="--points"):
        metrics.timeseries(store, "any", points)


def test_timeseries_gives_every_interval_in_order(store: Store) -> None:
    test = make_test()
    run = make_run(test)
    made = snapshots(run, 40)
    store_all(store.db, test, [run], list(reversed(made)))
    series = metrics.timeseries(store, run.id)
    rows = list(series.rows)
    assert series.step == 1
    assert [r["seq"] for r in rows] == list(range(1, 41))
    assert list(rows[0]) == list(metrics.TIMESERIES_FIELDS)
    assert rows[0]["timestamp"] == "2026-03-01T12:00:05.000Z"
    assert rows[2]["p50ResponseMs"] is None  # Locust had no window yet: unknown, not 0
    assert rows[-1]["currentUsers"] == 20


@pytest.mark.parametrize(("count", "points"), [(100, 10), (101, 10), (7, 3), (1000, 7), (5, 5)])
def test_downsampling_returns_at_most_points_and_keeps_totals(
    store: Store, count: int, points: int
) -> None:
    test = make_test()
    run = make_run(test)
    made = snapshots(run, count, requests_per_interval=500, failures_every=3)
    store_all(store.db, test, [run], made)
    series = metrics.timeseries(store, run.id, points)
    rows = list(series.rows)
    assert 0 < len(rows) <= points
    assert sum(r["intervalRequests"] for r in rows) == 500 * count
    assert sum(r["intervalFailures"] for r in rows) == sum(s.intervalFailures for s in made)
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert rows[-1]["timestamp"] == metrics.iso(made[-1].timestamp)
    for row in rows:
        assert row["totalRPS"] == pytest.approx(100.0)  # 500 requests per 5 s interval
        assert row["p95ResponseMs"] >= 100.0
    if count > points:
        assert series.step > 1 and sum(r["intervals"] for r in rows) == count


def test_downsampled_p95_keeps_the_worst_and_users_the_most(store: Store) -> None:
    test = make_test()
    run = make_run(test, targetUsers=100)
    made = snapshots(run, 20)
    made[7].p95ResponseMs = 5000.0
    store_all(store.db, test, [run], made)
    rows = list(metrics.timeseries(store, run.id, 2).rows)
    assert len(rows) == 2
    assert rows[0]["p95ResponseMs"] == 5000.0
    assert (rows[0]["currentUsers"], rows[1]["currentUsers"]) == (10, 20)


def test_timeseries_of_a_run_without_intervals_is_empty(store: Store) -> None:
    assert list(metrics.timeseries(store, "no-intervals").rows) == []
    assert list(metrics.timeseries(store, "no-intervals", 10).rows) == []


def test_timeseries_stays_in_scope(client: mongomock.MongoClient) -> None:
    test = make_test(tenantId="a")
    run = make_run(test)
    store_all(client["db"], test, [run], snapshots(run, 5))
    other = Store(client["db"], Scope("b"), "mongodb://x")
    assert list(metrics.timeseries(other, run.id).rows) == []
    assert list(metrics.timeseries(other, run.id, 2).rows) == []
    with pytest.raises(NotFound):
        metrics.find_run(other, run.id)


def test_request_and_error_rows(store: Store) -> None:
    test = make_test()
    run = make_run(test)
    rows = metrics.request_rows(store, run)
    assert [(r["method"], r["name"]) for r in rows] == list(REQUESTS)
    assert rows[0]["numRequests"] == 5000 and rows[0]["p99ResponseMs"] == 250.0
    errors = metrics.error_rows(run)
    assert [e["occurrences"] for e in errors] == [70, 30]
    assert errors[0] == {
        "method": "POST",
        "name": "/api/orders",
        "error": "HTTPError(500)",
        "occurrences": 70,
    }


def test_request_rows_of_a_running_run_come_from_its_latest_interval(store: Store) -> None:
    test = make_test()
    run = make_run(test, status="Running", finalStats=None, finishedAt=None)
    store_all(store.db, test, [run], snapshots(run, 4))
    rows = metrics.request_rows(store, run)
    assert len(rows) == 2 and rows[0]["numRequests"] == 250 * 4
    assert metrics.error_rows(run) == []


def test_export_flattens_every_interval(store: Store) -> None:
    test = make_test()
    run = make_run(test)
    store_all(store.db, test, [run], snapshots(run, 12))
    rows = list(metrics.export_intervals(store, run.id))
    assert len(rows) == 12
    assert all(list(r) == list(metrics.EXPORT_FIELDS) for r in rows)
    assert [r["final"] for r in rows] == [False] * 11 + [True]
    assert rows[-1]["totalRequests"] == 12 * 500
    by_request = list(metrics.export_request_intervals(store, run.id))
    assert len(by_request) == 12 * len(REQUESTS)
    assert all(list(r) == list(metrics.REQUEST_EXPORT_FIELDS) for r in by_request)
    assert by_request[0]["seq"] == 1 and by_request[-1]["seq"] == 12
    assert {r["name"] for r in by_request} == {name for _, name in REQUESTS}


def test_export_is_a_stream(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows come out as the cursor is read: nothing forces the whole run into a list."""
    test = make_test()
    run = make_run(test)
    store_all(store.db, test, [run], snapshots(run, 5))
    read: list[int] = []
    original: Callable[..., Any] = store.metrics.iter_for_run

    def counting(*args: Any, **kwargs: Any) -> Any:
        for doc in original(*args, **kwargs):
            read.append(doc["seq"])
            yield doc

    monkeypatch.setattr(store.metrics, "iter_for_run", counting)
    rows = metrics.export_intervals(store, run.id)
    assert read == []
    first = next(rows)
    assert first["seq"] == 1 and read == [1]


def test_summary_survives_old_runs_without_p90(store: Store) -> None:
    test = make_test()
    run = make_run(test, final=final_stats(p90=None))
    assert metrics.summary(store, run)["p90ResponseMs"] is None
