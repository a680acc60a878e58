"""The run service on mongomock: planning, leases, staleness, verdicts."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import mongomock
import pytest

from loadmgr.errors import ClusterBusy, NotFound, ValidationFailed
from loadmgr.models import LoadTest, LoadTestRun, RunStatus, Scope, Verdict
from loadmgr.service.judging.verdicts import evaluate, verdict_of
from loadmgr.service.runs.lease import is_stale, lease_id, take_lease
from loadmgr.service.runs.lookup import list_runs, since_cutoff
from loadmgr.service.runs.options import RunOptions
from loadmgr.service.runs.plan import plan_run, record_pending
from loadmgr.store import Store


@pytest.fixture
def store() -> Store:
    return Store(mongomock.MongoClient()["loadmgr"], Scope(), "mongodb://mock")


@pytest.fixture
def test_doc(store: Store) -> LoadTest:
    test = LoadTest(
        name="api",
        targetUrl="http://127.0.0.1:1",
        locustfileContent="from locust import HttpUser\n",
        locustfileSha256="abc",
        defaultDurationSec=60,
        maxDurationSec=300,
        thresholds=["p95<500ms", "error_rate<1%"],
    )
    return store.tests.insert(test)


def test_plan_uses_test_defaults_and_overrides(store, test_doc):
    plan = plan_run(store, "api", RunOptions(users=7, thresholds=["p95<200ms"]), "ann")
    assert plan.run.targetUsers == 7
    assert plan.run.durationSeconds == 60
    assert plan.run.createdBy == "ann" and plan.run.testName == "api"
    # The run's p95 replaces the test's; error_rate is kept.
    assert plan.run.thresholds == ["error_rate<1%", "p95<200ms"]
    assert plan.cluster is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RunOptions(duration=301), "maximum"),
        (RunOptions(spawn_rate=0), "--spawn-rate"),
        (RunOptions(users=-1), "--users"),
        (RunOptions(users=0), "--users"),
        (RunOptions(interval=1.5), "--interval"),
        (RunOptions(if_busy="later"), "--if-busy"),
        (RunOptions(workers=-1), "--workers"),
        (RunOptions(thresholds=["p42<1s"]), "p42"),
    ],
)
def test_impossible_overrides_are_refused(store, test_doc, options, message):
    with pytest.raises(ValidationFailed, match=message.replace("-", r"\-")):
        plan_run(store, "api", options, "ann")
    assert store.runs.collection.count_documents({}) == 0


def test_unknown_test_or_cluster(store, test_doc):
    with pytest.raises(NotFound):
        plan_run(store, "nope", RunOptions(), "ann")
    with pytest.raises(NotFound):
        plan_run(store, "api", RunOptions(cluster="ghost"), "ann")


def test_lease_has_one_holder_until_released(store, test_doc):
    first = plan_run(store, "api", RunOptions(), "ann")
    second = plan_run(store, "api", RunOptions(), "bob")
    assert take_lease(store, first)
    with pytest.raises(ClusterBusy):
        take_lease(store, second)
    assert take_lease(store, plan_run(store, "api", RunOptions(if_busy="skip"), "c")) is False
    store.leases.release(lease_id("local"), first.run.id)
    assert take_lease(store, second)


def test_expired_lease_can_be_taken(store, test_doc):
    now = datetime.now(timezone.utc)
    store.leases.collection.insert_one(
        {"_id": lease_id("local"), "runId": "dead", "expiresAt": now - timedelta(seconds=1)}
    )
    assert take_lease(store, plan_run(store, "api", RunOptions(), "ann"))


def test_racing_lease_takers_get_one_winner(store, test_doc):
    plans = [plan_run(store, "api", RunOptions(if_busy="skip"), f"u{i}") for i in range(8)]
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda p=p: results.append(take_lease(store, p))) for p in plans
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1


def test_stale_runs(store, test_doc):
    plan = plan_run(store, "api", RunOptions(interval=5), "ann")
    plan.run.collector = {"interval": 5}
    run = record_pending(store, plan)
    now = datetime.now(timezone.utc)
    running = run.model_copy(update={"status": RunStatus.RUNNING, "heartbeatAt": now})
    assert not is_stale(running, now)
    assert is_stale(running, now + timedelta(seconds=16))
    # A Pending run is starting its cluster (no heartbeat for up to a minute): not stale.
    starting = run.model_copy(update={"status": RunStatus.PENDING, "heartbeatAt": now})
    assert not is_stale(starting, now + timedelta(seconds=60))
    assert is_stale(starting, now + timedelta(seconds=200))
    finished = running.model_copy(update={"status": RunStatus.FINISHED})
    assert not is_stale(finished, now + timedelta(hours=1))
    listed = list_runs(store, test_ref="api")
    assert [r["id"] for r in listed] == [run.id] and listed[0]["stale"] is False


def test_list_runs_validates_filters(store, test_doc):
    with pytest.raises(ValidationFailed):
        list_runs(store, statuses=["Sleeping"])
    with pytest.raises(ValidationFailed):
        list_runs(store, limit=-1)
    assert list_runs(store, statuses=["running", "FINISHED"]) == []


def test_list_runs_filters_on_the_verdict(store, test_doc):
    verdicts = {"a": "passed", "b": "failed", "c": "aborted", "d": "error", "e": None,
                "f": "inconclusive"}
    for name, verdict in verdicts.items():
        plan = plan_run(store, "api", RunOptions(name=name), "ann")
        store.runs.insert(plan.run.model_copy(update={"verdict": verdict and Verdict(verdict)}))
    store.runs.collection.update_one({"name": "e"}, {"$unset": {"verdict": ""}})  # absent

    def names(*wanted: str) -> list[str]:
        return sorted(r["name"] for r in list_runs(store, verdicts=list(wanted)))

    assert names("failed") == ["b"]
    assert names("ABORTED", " error ") == ["c", "d"]
    assert names("none") == ["e"]
    assert names("inconclusive") == ["f"]
    assert names() == ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(
        ValidationFailed, match="one of passed, failed, inconclusive, aborted, error, none"
    ):
        list_runs(store, verdicts=["green"])


def test_since_cutoff():
    now = datetime.now(timezone.utc)
    assert abs((now - since_cutoff("2h")).total_seconds() - 7200) < 5
    assert abs((now - since_cutoff("7d")).total_seconds() - 7 * 86400) < 5
    assert since_cutoff("2026-11-01") == datetime(2026, 11, 1, tzinfo=timezone.utc)
    with pytest.raises(ValidationFailed):
        since_cutoff("last tuesday")


def test_verdicts_on_final_stats():
    final = {
        "totals": {
            "requests": 100,
            "failures": 2,
            "errorRate": 0.02,
            "rps": 50.0,
            "p95ResponseMs": 120.0,
            "maxResponseMs": 900.0,
        },
        "requestStats": [
            {
                "method": "GET",
                "name": "/api",
                "numRequests": 60,
                "numFailures": 0,
                "errorRate": 0.0,
                "p95ResponseMs": 80.0,
                "requestsPerSec": 30.0,
            },
        ],
    }
    results = evaluate(
        [
            "p95<200ms",
            "error_rate<1%",
            "rps>=40",
            "GET /api:p95<100ms",
            "/api:p95<50ms",
            "GET /missing:p95<1s",
        ],
        final,
    )
    assert [r.passed for r in results] == [True, False, True, True, False, False]
    assert results[-1].actual is None  # a request that never ran cannot pass
    assert verdict_of(results) == Verdict.FAILED
    assert verdict_of(results[:1]) == Verdict.PASSED
    assert verdict_of([]) is None


def test_run_document_round_trips():
    run = LoadTestRun(loadTestId="t", targetUsers=1, spawnRate=1, durationSeconds=1)
    assert LoadTestRun.model_validate(run.model_dump()) == run
