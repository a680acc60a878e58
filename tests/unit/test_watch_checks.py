"""A watcher shows a run's verdict once the checks it asked for are in (issue 15 trial).

The collector stores a run's end, then applies its baseline and trend checks: `runs
follow` reading in between used to exit 0 on a run about to be `failed`."""

from __future__ import annotations

import threading
import time

import mongomock

from loadmgr.models import Scope
from loadmgr.service.run_control import with_its_checks
from loadmgr.service.runs import get_run
from loadmgr.store import Store
from tests.metrics_data import make_run, make_test, store_all


def _store_with(**fields: object) -> tuple[Store, str]:
    store = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    store.ensure_indexes()
    test = make_test("checkout")
    run = make_run(test, **fields)
    store_all(store.db, test, [run])
    return store, run.id


def test_the_verdict_shown_is_the_one_after_the_checks() -> None:
    store, run_id = _store_with(requestedChecks={"baseline": {"rps": 0.1}}, verdict="passed")

    def collector_applies_the_baseline() -> None:
        time.sleep(0.3)
        store.db.load_test_runs.update_one(
            {"id": run_id}, {"$set": {"baselineChecks": [], "verdict": "failed"}}
        )

    applying = threading.Thread(target=collector_applies_the_baseline)
    applying.start()
    try:
        shown = with_its_checks(store, get_run(store, run_id))
    finally:
        applying.join()
    assert shown.verdict is not None and shown.verdict.value == "failed"


def test_without_requested_checks_nothing_is_waited_for() -> None:
    store, run_id = _store_with(verdict="passed")
    started = time.monotonic()
    assert with_its_checks(store, get_run(store, run_id), wait=30).verdict.value == "passed"
    assert time.monotonic() - started < 1


def test_a_check_that_never_comes_is_waited_for_a_bounded_time() -> None:
    store, run_id = _store_with(requestedChecks={"trend": {}}, verdict="passed")
    started = time.monotonic()
    shown = with_its_checks(store, get_run(store, run_id), wait=0.5)
    assert shown.verdict is not None and shown.verdict.value == "passed"
    assert 0.5 <= time.monotonic() - started < 5
