"""A run's requested checks are judged before its end is stored, and stored with it.

The collector used to store a run's end, then apply its baseline and trend checks: `runs
follow` (or any script) reading in between saw `passed` on a run about to be `failed`
(issue 15 trial). `judged_checks` gives the fields the end is written with, verdict
included, so there is no in-between to read."""

from __future__ import annotations

import mongomock

from loadmgr.models import LoadTestRun, Scope
from loadmgr.service.lifecycle.end import judged_checks
from loadmgr.store import Store
from tests.metrics_data import final_stats, make_run, make_test, steady_intervals, store_all


def _store() -> Store:
    store = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    store.ensure_indexes()
    return store


def _ended(store: Store, **fields: object) -> LoadTestRun:
    """A test with a stored baseline run (100/s), and a run of it ending at 50/s that is
    not stored yet, as the collector holds it just before its final write."""
    baseline = make_run(make_test("checkout"), final=final_stats(rps=100.0))
    test = make_test("checkout", baselineRunId=baseline.id)
    baseline = baseline.model_copy(update={"loadTestId": test.id})
    run = make_run(test, final=final_stats(rps=50.0), verdict="passed", **fields)
    # Its intervals are stored as it goes: the check tests the change on them.
    store_all(store.db, test, [baseline], [*steady_intervals(baseline), *steady_intervals(run)])
    return run


def test_a_regression_is_in_the_verdict_written_with_the_end() -> None:
    store = _store()
    ended = _ended(store, requestedChecks={"baseline": {"rps": 0.1}})
    said: list[str] = []
    changes = judged_checks(store, ended, said.append)
    assert [check["regressed"] for check in changes["baselineChecks"]] == [True]
    assert changes["verdict"] == "failed"
    assert [reason["kind"] for reason in changes["verdictReasons"]] == ["baseline"]
    assert said and said[0].startswith("regression: rps")
    assert store.db.load_test_runs.count_documents({"id": ended.id}) == 0  # nothing written


def test_without_requested_checks_the_end_is_written_as_decided() -> None:
    store = _store()
    assert judged_checks(store, _ended(store), lambda _: None) == {}


def test_a_check_that_cannot_be_done_is_said_and_leaves_the_verdict() -> None:
    store = _store()
    ended = _ended(store, requestedChecks={"baseline": {"rps": 0.1}})
    store.db.load_tests.update_many({}, {"$set": {"baselineRunId": None}})
    said: list[str] = []
    assert judged_checks(store, ended, said.append) == {}
    assert said == [f"not compared with the baseline: test {'checkout'!r} has no baseline"]
