"""Stats payloads into snapshots and final stats: recorded shapes, edge cases, properties."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.locust.stats import SnapshotBuilder, final_stats
from loadmgr.models import MetricSnapshot
from loadmgr.models.stats import find_request, metric_value

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def entry(
    name: str,
    method: str = "GET",
    requests: int = 0,
    failures: int = 0,
    avg: float = 0.0,
    *,
    median: int = 2,
    p95: int = 5,
    p99: int = 6,
    min_ms: float = 2.0,
    max_ms: float = 9.0,
) -> dict[str, Any]:
    """One /stats/requests entry, with the field names and types Locust 2.47 sends."""
    return {
        "avg_content_length": 6.0,
        "avg_response_time": avg,
        "current_fail_per_sec": 0.0,
        "current_rps": 0.0,
        "max_response_time": max_ms if requests else 0.0,
        "median_response_time": median if requests else 0,
        "method": method,
        "min_response_time": min_ms if requests else 0,
        "name": name,
        "num_failures": failures,
        "num_requests": requests,
        "response_time_percentile_0.95": p95 if requests else 0,
        "response_time_percentile_0.99": p99 if requests else 0,
        "total_fail_per_sec": 0.0,
        "total_rps": 0.0,
    }


def payload(
    *entries: dict[str, Any],
    state: str = "running",
    users: int = 5,
    current: tuple[int | None, int | None] = (2, 5),
    workers: int | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A /stats/requests payload whose Aggregated entry sums `entries`."""
    requests = sum(e["num_requests"] for e in entries)
    failures = sum(e["num_failures"] for e in entries)
    avg = (
        sum(e["avg_response_time"] * e["num_requests"] for e in entries) / requests
        if requests
        else 0.0
    )
    total = entry("Aggregated", "", requests, failures, avg)
    if requests:  # like Locust: extremes and percentiles over every entry
        used = [e for e in entries if e["num_requests"]]
        total["response_time_percentile_0.99"] = max(
            e["response_time_percentile_0.99"] for e in used
        )
        total["min_response_time"] = min(e["min_response_time"] for e in used)
        total["max_response_time"] = max(e["max_response_time"] for e in used)
    total["total_rps"] = 42.5
    total["total_fail_per_sec"] = 1.5
    body: dict[str, Any] = {
        "current_fail_per_sec": 0.0,
        "current_response_time_percentiles": {
            "response_time_percentile_0.5": current[0],
            "response_time_percentile_0.95": current[1],
        },
        "current_rps": 0.0,
        "errors": errors or [],
        "fail_ratio": failures / requests if requests else 0.0,
        "state": state,
        "stats": [*sorted(entries, key=lambda e: (e["name"], e["method"])), total],
        "total_fail_per_sec": 1.5,
        "total_rps": 42.5,
        "user_count": users,
    }
    if workers is not None:
        body["worker_count"] = workers
        body["workers"] = [{"id": f"w{i}", "state": state, "user_count": 1} for i in range(workers)]
    return body


# A real payload of docs/locust-api.md, "GET /stats/requests" (standalone, after run_time
# expiry), lightly trimmed.
RECORDED = {
    "current_fail_per_sec": 18.5,
    "current_response_time_percentiles": {
        "response_time_percentile_0.5": 2,
        "response_time_percentile_0.95": 5,
    },
    "current_rps": 111.1,
    "errors": [
        {
            "error": "HTTPError('404 Client Error: File not found for url: /missing')",
            "first_seen": 1795471459.2801363,
            "last_seen": 1795471474.1374722,
            "method": "GET",
            "name": "/missing",
            "occurrences": 261,
        }
    ],
    "fail_ratio": 0.16211180124223604,
    "state": "stopped",
    "stats": [
        {
            "avg_content_length": 6.0,
            "avg_response_time": 2.708194857676904,
            "current_fail_per_sec": 0.0,
            "current_rps": 92.6,
            "max_response_time": 9.0,
            "median_response_time": 2,
            "method": "GET",
            "min_response_time": 2.0,
            "name": "/",
            "num_failures": 0,
            "num_requests": 1349,
            "response_time_percentile_0.95": 5,
            "response_time_percentile_0.99": 6,
            "total_fail_per_sec": 0.0,
            "total_rps": 90.08666286520851,
        },
        {
            "avg_content_length": 10.0,
            "avg_response_time": 2.58,
            "current_fail_per_sec": 18.5,
            "current_rps": 18.5,
            "max_response_time": 8.0,
            "median_response_time": 2,
            "method": "GET",
            "min_response_time": 2.0,
            "name": "/missing",
            "num_failures": 261,
            "num_requests": 261,
            "response_time_percentile_0.95": 4,
            "response_time_percentile_0.99": 6,
            "total_fail_per_sec": 17.43,
            "total_rps": 17.43,
        },
        {
            "avg_content_length": 59.33,
            "avg_response_time": 2.687,
            "current_fail_per_sec": 18.5,
            "current_rps": 111.1,
            "max_response_time": 9.0,
            "median_response_time": 2,
            "method": "",
            "min_response_time": 2.0,
            "name": "Aggregated",
            "num_failures": 261,
            "num_requests": 1610,
            "response_time_percentile_0.95": 5,
            "response_time_percentile_0.99": 6,
            "total_fail_per_sec": 17.43,
            "total_rps": 107.52,
        },
    ],
    "total_fail_per_sec": 17.429665684076664,
    "total_rps": 107.51632854928516,
    "user_count": 0,
}

CSV_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,"
    "75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
).split(",")


def csv_row(method: str, name: str, p90: str) -> dict[str, str]:
    row = dict.fromkeys(CSV_HEADER, "0")
    row.update({"Type": method, "Name": name, "90%": p90})
    return row


def builder(**kwargs: Any) -> SnapshotBuilder:
    return SnapshotBuilder("run-1", started_at=T0, tenant_id="t", env_id="e", **kwargs)


# -- SnapshotBuilder ---------------------------------------------------------------------


def test_first_payload_is_a_delta_against_zero_since_the_start() -> None:
    first = payload(entry("/", requests=100, failures=10, avg=4.0))
    snapshot = builder().build(first, T0 + timedelta(seconds=4))
    assert isinstance(snapshot, MetricSnapshot)
    assert snapshot.loadTestRunId == "run-1" and (snapshot.tenantId, snapshot.envId) == ("t", "e")
    assert snapshot.intervalSec == 4.0
    assert (snapshot.intervalRequests, snapshot.intervalFailures) == (100, 10)
    assert snapshot.totalRPS == 25.0 and snapshot.failuresPerSec == 2.5
    assert snapshot.errorRate == pytest.approx(0.1)
    assert snapshot.avgResponseMs == pytest.approx(4.0)
    assert (snapshot.totalRequests, snapshot.totalFailures) == (100, 10)
    assert snapshot.timestamp == T0 + timedelta(seconds=4)
    assert snapshot.metadata == {}


def test_interval_values_come_from_counter_deltas() -> None:
    build = builder()
    build.build(payload(entry("/", requests=100, failures=0, avg=2.0)), T0 + timedelta(seconds=2))
    second = payload(entry("/", requests=300, failures=20, avg=4.0))
    snapshot = build.build(second, T0 + timedelta(seconds=6))
    assert snapshot is not None
    assert snapshot.intervalSec == 4.0
    assert (snapshot.intervalRequests, snapshot.intervalFailures) == (200, 20)
    assert snapshot.totalRPS == 50.0 and snapshot.failuresPerSec == 5.0
    assert snapshot.errorRate == pytest.approx(0.1)
    # (4·300 − 2·100) / 200: the interval's own mean, not the cumulative 4.0
    assert snapshot.avgResponseMs == pytest.approx(5.0)
    assert (snapshot.totalRequests, snapshot.totalFailures) == (300, 20)


def test_percentiles_latency_extremes_users_state_and_seq() -> None:
    body = payload(
        entry("/", requests=10, avg=3.0, p99=40, min_ms=1.0, max_ms=55.0), users=7, current=(3, 12)
    )
    snapshot = builder(seq=5).build(body, T0 + timedelta(seconds=1))
    assert snapshot is not None
    assert (snapshot.p50ResponseMs, snapshot.p95ResponseMs) == (3.0, 12.0)  # rolling window
    # One window for an interval's percentiles: Locust's rolling window charts no p99
    # (its cumulative one could read below the rolling p95), so p99 is not known.
    assert snapshot.p99ResponseMs is None
    assert (snapshot.minResponseMs, snapshot.maxResponseMs) == (1.0, 55.0)
    assert snapshot.currentUsers == 7 and snapshot.state == "running"
    assert snapshot.workerCount is None  # standalone
    assert snapshot.seq == 5


def test_null_rolling_percentiles_stay_null() -> None:
    body = payload(entry("/", requests=10, avg=3.0), current=(None, None))
    snapshot = builder().build(body, T0 + timedelta(seconds=1))
    assert snapshot is not None
    assert snapshot.p50ResponseMs is None and snapshot.p95ResponseMs is None


def test_missing_rolling_percentiles_key_reads_as_null() -> None:
    body = payload(entry("/", requests=10, avg=3.0))
    del body["current_response_time_percentiles"]
    snapshot = builder().build(body, T0 + timedelta(seconds=1))
    assert snapshot is not None and snapshot.p50ResponseMs is None


def test_no_requests_means_no_latencies_and_zero_error_rate() -> None:
    snapshot = builder().build(payload(entry("/")), T0 + timedelta(seconds=1))
    assert snapshot is not None
    assert snapshot.avgResponseMs is None and snapshot.errorRate == 0.0
    assert snapshot.minResponseMs is None and snapshot.maxResponseMs is None
    assert snapshot.p99ResponseMs is None
    assert snapshot.p50ResponseMs is None and snapshot.p95ResponseMs is None
    assert snapshot.requestStats[0].p50ResponseMs is None


def test_master_payload_has_a_worker_count() -> None:
    body = payload(entry("/", requests=5, avg=1.0), workers=2)
    snapshot = builder().build(body, T0 + timedelta(seconds=1))
    assert snapshot is not None and snapshot.workerCount == 2


def test_identical_cached_payload_is_skipped_unless_forced() -> None:
    build = builder()
    body = payload(entry("/", requests=50, avg=2.0))
    assert build.build(body, T0 + timedelta(seconds=2)) is not None
    # Locust memoizes /stats/requests for 2 s: the same numbers again carry no interval.
    assert build.build(copy.deepcopy(body), T0 + timedelta(seconds=3)) is None
    forced = build.build(copy.deepcopy(body), T0 + timedelta(seconds=4), force=True)
    assert forced is not None
    assert forced.intervalRequests == 0 and forced.totalRPS == 0.0
    assert forced.avgResponseMs is None and forced.totalRequests == 50


def test_skipped_poll_does_not_shorten_the_next_interval() -> None:
    build = builder()
    body = payload(entry("/", requests=50, avg=2.0))
    build.build(body, T0 + timedelta(seconds=2))
    assert build.build(copy.deepcopy(body), T0 + timedelta(seconds=3)) is None
    later = build.build(payload(entry("/", requests=110, avg=2.0)), T0 + timedelta(seconds=5))
    assert later is not None
    assert later.intervalSec == 3.0 and later.totalRPS == 20.0


def test_counter_drop_starts_a_new_series() -> None:
    build = builder()
    build.build(payload(entry("/", requests=500, failures=50, avg=3.0)), T0 + timedelta(seconds=5))
    # /stats/reset or a new swarm zeroed the counters between two polls.
    snapshot = build.build(
        payload(entry("/", requests=40, failures=1, avg=2.0)), T0 + timedelta(seconds=7)
    )
    assert snapshot is not None
    assert snapshot.metadata == {"reset": True}
    assert (snapshot.intervalRequests, snapshot.intervalFailures) == (40, 1)
    assert snapshot.totalRPS == 20.0
    assert snapshot.avgResponseMs == pytest.approx(2.0)
    assert snapshot.requestStats[0].intervalRequests == 40


def test_one_entry_dropping_is_a_reset_too() -> None:
    build = builder()
    build.build(
        payload(entry("/a", requests=100, avg=1.0), entry("/b", requests=10, avg=1.0)),
        T0 + timedelta(seconds=1),
    )
    snapshot = build.build(
        payload(entry("/a", requests=200, avg=1.0), entry("/b", requests=5, avg=1.0)),
        T0 + timedelta(seconds=2),
    )
    assert snapshot is not None and snapshot.metadata == {"reset": True}
    assert snapshot.intervalRequests == 205


def test_entries_vanishing_after_a_new_swarm_is_a_reset() -> None:
    build = builder()
    build.build(payload(entry("/old", requests=100, avg=1.0)), T0 + timedelta(seconds=1))
    fresh = payload(entry("/new", requests=150, avg=1.0))
    snapshot = build.build(fresh, T0 + timedelta(seconds=2))
    assert snapshot is not None and snapshot.metadata == {"reset": True}
    assert snapshot.intervalRequests == 150


def test_request_stats_are_per_entry_without_aggregated() -> None:
    build = builder()
    build.build(
        payload(
            entry("/a", requests=10, avg=2.0), entry("/b", "POST", requests=4, failures=1, avg=8.0)
        ),
        T0 + timedelta(seconds=1),
    )
    snapshot = build.build(
        payload(
            entry("/a", requests=30, avg=2.0), entry("/b", "POST", requests=4, failures=1, avg=8.0)
        ),
        T0 + timedelta(seconds=3),
    )
    assert snapshot is not None
    by_name = {(r.method, r.name): r for r in snapshot.requestStats}
    assert set(by_name) == {("GET", "/a"), ("POST", "/b")}
    a, b = by_name[("GET", "/a")], by_name[("POST", "/b")]
    assert (a.numRequests, a.intervalRequests, a.requestsPerSec) == (30, 20, 10.0)
    assert (b.numRequests, b.numFailures, b.intervalRequests, b.requestsPerSec) == (4, 1, 0, 0.0)
    assert (a.p50ResponseMs, a.p95ResponseMs, a.p99ResponseMs) == (2.0, 5.0, 6.0)
    assert (a.minResponseTimeMs, a.maxResponseTimeMs, a.avgContentLength) == (2.0, 9.0, 6.0)
    assert b.avgResponseTimeMs == 8.0  # cumulative


def test_zero_elapsed_time_gives_zero_rates() -> None:
    snapshot = builder().build(payload(entry("/", requests=10, avg=1.0)), T0)
    assert snapshot is not None
    assert snapshot.totalRPS == 0.0 and snapshot.intervalRequests == 10


def test_prime_takes_a_baseline_without_a_snapshot() -> None:
    build = builder(seq=9)
    build.prime(payload(entry("/", requests=1000, avg=2.0)), T0 + timedelta(seconds=60))
    snapshot = build.build(payload(entry("/", requests=1100, avg=2.0)), T0 + timedelta(seconds=62))
    assert snapshot is not None
    assert snapshot.intervalRequests == 100 and snapshot.totalRPS == 50.0
    assert snapshot.seq == 9 and build.seq == 10


def test_recorded_payload_builds_and_round_trips() -> None:
    snapshot = builder().build(RECORDED, T0 + timedelta(seconds=15))
    assert snapshot is not None
    assert (snapshot.totalRequests, snapshot.totalFailures) == (1610, 261)
    assert [r.name for r in snapshot.requestStats] == ["/", "/missing"]
    stored = snapshot.to_document()
    assert MetricSnapshot.model_validate(stored) == snapshot


def test_500_entries_are_all_kept() -> None:
    # How fast this is belongs to the benchmark (bench/, case 4), not to a timed test.
    def big(step: int) -> dict[str, Any]:
        return payload(
            *(entry(f"/p{i}", requests=step * (i + 1), avg=2.0 + i % 7) for i in range(500))
        )

    build = builder()
    first = build.build(big(1), T0 + timedelta(seconds=1))
    second = build.build(big(2), T0 + timedelta(seconds=2))
    assert first is not None and second is not None
    assert len(second.requestStats) == 500
    by_name = {r.name: r.intervalRequests for r in second.requestStats}
    assert [by_name[f"/p{i}"] for i in (0, 1, 499)] == [1, 2, 500]
    final = final_stats(big(2))
    assert len(final["requestStats"]) == 500


# -- final_stats -------------------------------------------------------------------------


def test_final_stats_totals_are_locusts_own_numbers() -> None:
    rows = [
        csv_row("GET", "/", "4"),
        csv_row("GET", "/missing", "3"),
        csv_row("", "Aggregated", "4"),
    ]
    final = final_stats(RECORDED, rows)
    totals = final["totals"]
    assert (totals["requests"], totals["failures"]) == (1610, 261)
    assert totals["errorRate"] == pytest.approx(261 / 1610)
    assert totals["rps"] == 107.52 and totals["failuresPerSec"] == 17.43
    assert totals["avgResponseMs"] == 2.687
    assert (totals["minResponseMs"], totals["maxResponseMs"]) == (2.0, 9.0)
    assert (totals["p50ResponseMs"], totals["p90ResponseMs"]) == (2.0, 4.0)
    assert (totals["p95ResponseMs"], totals["p99ResponseMs"]) == (5.0, 6.0)
    by_name = {r["name"]: r for r in final["requestStats"]}
    assert by_name["/"]["numRequests"] == 1349 and by_name["/"]["numFailures"] == 0
    assert by_name["/missing"]["numFailures"] == 261 and by_name["/missing"]["errorRate"] == 1.0
    assert by_name["/missing"]["p90ResponseMs"] == 3.0
    assert by_name["/"]["requestsPerSec"] == 90.08666286520851
    assert sum(r["numRequests"] for r in final["requestStats"]) == totals["requests"]
    assert final["errors"] == [
        {
            "method": "GET",
            "name": "/missing",
            "error": "HTTPError('404 Client Error: File not found for url: /missing')",
            "occurrences": 261,
        }
    ]
    assert final["state"] == "stopped" and final["userCount"] == 0 and final["workerCount"] is None


def test_final_stats_without_csv_or_requests() -> None:
    final = final_stats(payload(entry("/"), state="stopped", workers=2))
    totals = final["totals"]
    assert totals["requests"] == 0 and totals["errorRate"] == 0.0
    assert totals["p90ResponseMs"] is None and totals["avgResponseMs"] is None
    assert totals["p95ResponseMs"] is None and totals["maxResponseMs"] is None
    assert final["requestStats"][0]["avgResponseTimeMs"] is None
    assert final["workerCount"] == 2


def test_final_stats_reads_na_percentiles_as_null() -> None:
    final = final_stats(RECORDED, [csv_row("", "Aggregated", "N/A")])
    assert final["totals"]["p90ResponseMs"] is None


def test_metric_value_reads_totals_and_scoped_requests() -> None:
    body = payload(
        entry("/api/items", requests=10, avg=3.0, p95=30, max_ms=55.0),
        entry("/api/items", "POST", requests=2, avg=9.0),
    )
    final = final_stats(body, [csv_row("GET", "/api/items", "25")])
    assert metric_value(final, "rps") == 42.5
    assert metric_value(final, "avg") == pytest.approx(4.0)
    assert metric_value(final, "p95", "GET /api/items") == 30.0
    assert metric_value(final, "p90", "GET /api/items") == 25.0
    assert metric_value(final, "avg", "POST /api/items") == 9.0
    assert metric_value(final, "p95", "/api/items") is None  # ambiguous without the method
    assert metric_value(final, "p95", "GET /nope") is None
    assert find_request(final_stats(RECORDED), "/missing") is not None


# -- properties --------------------------------------------------------------------------

Step = tuple[int, int, float, bool, int]  # new requests, of which failures, avg, reset, seconds


@st.composite
def poll_steps(draw: st.DrawFn) -> list[Step]:
    steps = []
    for _ in range(draw(st.integers(1, 12))):
        new = draw(st.integers(0, 500))
        steps.append(
            (
                new,
                draw(st.integers(0, new)),
                draw(st.floats(0.0, 5000.0, allow_nan=False)),
                draw(st.booleans()) and draw(st.booleans()),  # resets are rarer
                draw(st.integers(0, 5)),
            )
        )
    return steps


def replay(steps: list[Step]) -> tuple[list[MetricSnapshot], list[tuple[int, int]]]:
    """Feed a poll sequence to a builder; also return the counters Locust would show."""
    build = builder()
    now, requests, failures, avg = T0, 0, 0, 0.0
    snapshots, counters = [], []
    for new, new_failures, step_avg, reset, seconds in steps:
        # A reset shows only as a counter going down; one hidden by new requests cannot be
        # seen by anyone, so the generator only makes visible ones.
        if reset and new < requests:
            requests, failures, avg = 0, 0, 0.0
        total = requests + new
        avg = (avg * requests + step_avg * new) / total if total else 0.0
        requests, failures = total, failures + new_failures
        now += timedelta(seconds=seconds)
        counters.append((requests, failures))
        body = payload(entry("/", requests=requests, failures=failures, avg=avg))
        snapshot = build.build(body, now)
        if snapshot is not None:
            snapshots.append(snapshot)
    return snapshots, counters


@settings(max_examples=150, deadline=None)
@given(poll_steps())
def test_interval_values_are_never_negative(steps: list[Step]) -> None:
    snapshots, _ = replay(steps)
    for snapshot in snapshots:
        assert snapshot.intervalRequests >= 0 and snapshot.intervalFailures >= 0
        assert snapshot.intervalFailures <= snapshot.intervalRequests
        assert snapshot.totalRPS >= 0 and snapshot.failuresPerSec >= 0
        assert 0.0 <= snapshot.errorRate <= 1.0
        assert snapshot.avgResponseMs is None or snapshot.avgResponseMs >= 0
        assert (snapshot.avgResponseMs is None) == (snapshot.intervalRequests == 0)
        for request in snapshot.requestStats:
            assert request.intervalRequests >= 0 and request.requestsPerSec >= 0


@settings(max_examples=150, deadline=None)
@given(poll_steps())
def test_intervals_add_up_to_the_counters_within_a_series(steps: list[Step]) -> None:
    snapshots, counters = replay(steps)
    series_start = max((i for i, s in enumerate(snapshots) if s.metadata.get("reset")), default=0)
    series = snapshots[series_start:]
    if series:
        last = series[-1]
        assert sum(s.intervalRequests for s in series) == last.totalRequests
        assert sum(s.intervalFailures for s in series) == last.totalFailures
        assert (last.totalRequests, last.totalFailures) == counters[-1]
    assert [s.seq for s in snapshots] == list(range(len(snapshots)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=10))
def test_repeated_payloads_emit_one_snapshot_each_change(repeats: list[int]) -> None:
    build = builder()
    emitted = 0
    for index, extra in enumerate(repeats):
        body = payload(entry("/", requests=(index + 1) * 10, avg=1.0))
        for copy_index in range(extra + 1):
            now = T0 + timedelta(seconds=index * 10 + copy_index + 1)
            emitted += build.build(copy.deepcopy(body), now) is not None
    assert emitted == len(repeats)


def test_built_snapshots_are_valid_documents_that_round_trip() -> None:
    """`build` skips validation for speed: what it makes must still be a valid document."""
    import warnings

    b = builder()
    first = b.build(
        payload(entry("/", requests=100, failures=10, avg=4.0)), T0 + timedelta(seconds=4)
    )
    second = b.build(
        payload(entry("/", requests=300, failures=12, avg=5.0)), T0 + timedelta(seconds=8)
    )
    for snapshot in (first, second):
        assert snapshot is not None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a serializer warning means a malformed field
            stored = snapshot.model_dump()
            as_json = snapshot.model_dump_json()
        assert MetricSnapshot.model_validate(stored) == snapshot
        assert MetricSnapshot.model_validate_json(as_json) == snapshot
