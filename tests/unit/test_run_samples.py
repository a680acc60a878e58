"""A run's steady samples stored at its end (issue 24's benchmark): exactly what its
intervals give, bounded, read by comparisons instead of the intervals, kept through
retention's downsampling, and never carried by an ordinary read of the run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import mongomock
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmgr.models import LoadTestRun, Scope
from loadmgr.service.analysis import compare
from loadmgr.service.analysis.run_samples import (
    MAX_SAMPLED_REQUESTS,
    MAX_SAMPLES_BYTES,
    STORED_METRICS,
    comparison_samples,
    decode,
    encode,
    samples_at_end,
)
from loadmgr.service.analysis.samples import steady_samples
from loadmgr.service.lifecycle.end import SteadySamples, end_plan
from loadmgr.service.upkeep.policies import RetentionSpec, set_policy
from loadmgr.service.upkeep.prune import prune_history
from loadmgr.store import Store
from tests.metrics_data import (
    START,
    final_stats,
    make_run,
    make_test,
    plugin_snapshots,
    steady_intervals,
    store_all,
)

SERVER = "server.cpu"


def _store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def _requests(count: int) -> list[dict[str, Any]]:
    """`count` requests, the later ones busier."""
    base = final_stats()["requestStats"][0]
    return [
        {**base, "method": "GET", "name": f"/r{i}", "numRequests": 100 * (i + 1)}
        for i in range(count)
    ]


def _stored_run(store: Store, draw: Any, requests: int, intervals: int, warmup: int) -> LoadTestRun:
    test = make_test()
    run = make_run(
        test,
        final=final_stats(per_request=_requests(requests)),
        warmupSec=warmup,
        serverStats={"cpu": {"avg": 0.5}},
    )
    made = steady_intervals(run, intervals, noise=0.2, seed=draw(st.integers(0, 99)))
    for snapshot in made:  # what makes an interval not steady, or a latency not a sample
        snapshot.state = draw(st.sampled_from(["running", "running", "spawning", None]))
        snapshot.gap = draw(st.booleans()) and draw(st.booleans())
        if draw(st.booleans()) and snapshot.requestStats:
            snapshot.requestStats[0].intervalRequests = 0
        if draw(st.booleans()):
            snapshot.intervalRequests = 0
    store_all(store.db, test, [run], made)
    return run


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_stored_samples_are_what_the_intervals_give(data: st.DataObject) -> None:
    """Whatever the intervals (states, gaps, warm-up, requests without requests), the
    bound (some requests not stored) and what is asked (a server metric, a request
    never stored, a metric subset): a comparison's samples equal `steady_samples`."""
    draw = data.draw
    store = _store()
    count = draw(st.integers(0, 8))
    run = _stored_run(store, draw, count, draw(st.integers(0, 14)), draw(st.sampled_from([0, 20])))
    budget = draw(st.integers(0, 8 * 8 * 14 * (count + 1)))
    stored = samples_at_end(store, run, budget=budget)
    if stored is not None:
        store.runs.set_samples(run.id, stored)
    names = [f"GET /r{i}" for i in range(count)]
    metrics = draw(st.lists(st.sampled_from([*STORED_METRICS, SERVER, "requests"]), unique=True))
    wanted = draw(st.lists(st.sampled_from([*names, "GET /never"]), unique=True))
    expected = steady_samples(store, run, metrics, requests=wanted)
    assert comparison_samples(store, run, metrics, requests=wanted) == expected


def test_the_busiest_requests_are_stored_within_the_bound() -> None:
    store = _store()
    test = make_test()
    run = make_run(test, final=final_stats(per_request=_requests(MAX_SAMPLED_REQUESTS + 5)))
    store_all(store.db, test, [run], steady_intervals(run, 3))
    stored = samples_at_end(store, run)
    assert stored is not None
    kept = [item["request"] for item in stored["requests"]]
    busiest = [f"GET /r{i}" for i in range(MAX_SAMPLED_REQUESTS + 4, 4, -1)]
    assert kept == busiest and stored["requestsOmitted"] == 5
    # A bound the totals alone pass: nothing stored, comparisons read the intervals.
    assert samples_at_end(store, run, budget=8) is None
    assert encode({(None, "p95"): [1.0] * 2}, [], budget=8) is None


def test_the_bound_holds_with_the_most_requests_and_a_long_run() -> None:
    """The stored form never passes MAX_SAMPLES_BYTES, so the run document keeps fitting
    MongoDB's 16 MiB beside its own worst case (service/collection/fitting.py)."""
    intervals = 2_880  # four hours of 5-s intervals
    samples = {
        (request, metric): [123.456] * intervals
        for request in [None, *(f"GET /r{i}" for i in range(MAX_SAMPLED_REQUESTS))]
        for metric in STORED_METRICS
    }
    requests = [f"GET /r{i}" for i in range(MAX_SAMPLED_REQUESTS)]
    stored = encode(samples, requests)
    assert stored is not None and 0 < len(stored["requests"]) < MAX_SAMPLED_REQUESTS
    size = sum(len(v) for v in stored["totals"].values()) + sum(
        len(v) for item in stored["requests"] for v in item["values"].values()
    )
    assert size <= MAX_SAMPLES_BYTES


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "samples",
        {"v": 2, "metrics": [], "totals": {}, "requests": []},
        {"v": 1, "metrics": ["p95"], "totals": {"p95": b"123"}, "requests": []},
        {"v": 1, "metrics": ["p95"], "totals": {"p99": b""}, "requests": []},
        {"v": 1, "metrics": ["p95"], "totals": {}, "requests": [{"request": 3, "values": {}}]},
        {"v": 1, "metrics": "p95", "totals": {}, "requests": []},
    ],
)
def test_samples_that_cannot_be_read_are_read_from_the_intervals(stored: Any) -> None:
    assert decode(stored) is None


def _pair(store: Store) -> tuple[LoadTestRun, LoadTestRun]:
    test = make_test()
    base = make_run(test, final=final_stats(p95=100.0))
    run = make_run(test, final=final_stats(p95=130.0))
    intervals = [*steady_intervals(base, 20, noise=0.1), *steady_intervals(run, 20, noise=0.1)]
    store_all(store.db, test, [base, run], intervals)
    return base, run


def test_a_comparison_of_runs_with_stored_samples_reads_no_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _store()
    base, run = _pair(store)
    before = compare.compare_runs(store, [base.id, run.id]).rows
    for each in (base, run):
        SteadySamples().after_end(store, each, lambda _: None)
    monkeypatch.setattr(store.metrics, "iter_for_run", _no_interval_read)
    assert compare.compare_runs(store, [base.id, run.id]).rows == before
    (check,) = compare.compare_with_baseline(store, base, run, {"p95": 0.10})
    assert check.regressed and check.significant


def _no_interval_read(*_: Any, **__: Any) -> Any:
    raise AssertionError("a comparison read the intervals")


def test_every_collector_stores_the_samples_and_a_run_read_never_carries_them() -> None:
    store = _store()
    base, _ = _pair(store)
    assert any(isinstance(step, SteadySamples) for step in end_plan().steps)
    SteadySamples().after_end(store, base, lambda _: None)
    assert decode(store.runs.samples_of(base.id)) is not None
    read = store.runs.find_by_id(base.id)
    assert read is not None and "samples" not in read.model_dump()
    updated = store.runs.update(base.id, {"name": "renamed"})
    assert updated is not None and "samples" not in updated.model_dump()
    listed = store.runs.find_many(test_id=base.loadTestId)
    assert listed and all("samples" not in doc for doc in listed)


def test_a_downsampled_run_keeps_the_samples_of_its_detail() -> None:
    """Retention merges a run's 5-s intervals into 1-min windows; its comparisons go on
    testing the samples of the detail, stored at its end."""
    store = _store()
    test = make_test()
    store_all(store.db, test=test)
    set_policy(store, "tester", RetentionSpec(keep_detail="1d", downsample="1m"))
    run = make_run(test, startedAt=START, finishedAt=START + timedelta(minutes=5))
    store_all(store.db, runs=[run], intervals=plugin_snapshots(run, 60, interval=5))
    SteadySamples().after_end(store, run, lambda _: None)
    detail = steady_samples(store, run, STORED_METRICS, requests=["GET /api/items"])

    result = prune_history(store, now=START + timedelta(days=2))

    assert result["runsDownsampled"] == 1 and store.metrics.count_for_run(run.id) == 5
    assert len(steady_samples(store, run, ["p95"])[(None, "p95")]) == 5  # the windows'
    assert len(detail[(None, "p95")]) == 60
    kept = comparison_samples(store, run, STORED_METRICS, requests=["GET /api/items"])
    assert kept == detail
