"""Issue 11 #5: `tests delete --force` racing a `runs start` of the same test never leaves
a run of a deleted test. Each interleaving is forced deterministically by running one side
inside the other's steps, against the real server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loadmgr.service.runs.lease as runs_service
from loadmgr.errors import Conflict, NotFound
from loadmgr.models import LoadTest, Scope
from loadmgr.service.definitions.tests import delete_test
from loadmgr.service.runs.lease import lease_id
from loadmgr.service.runs.options import RunOptions
from loadmgr.service.runs.plan import plan_run, record_pending
from loadmgr.store import Store
from tests.conftest import CliResult, error_line, ok

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]


@pytest.fixture
def store(mongo_uri: str) -> Iterator[Store]:
    store = Store.connect(mongo_uri, os.environ["LOADMGR_DATABASE"], Scope(), 5000)
    store.ensure_indexes()
    yield store
    store.close()


@pytest.fixture
def test_doc(store: Store) -> LoadTest:
    return store.tests.insert(
        LoadTest(
            name="api",
            targetUrl="http://127.0.0.1:1",
            locustfileContent="from locust import HttpUser\n",
        )
    )


def runs_of(store: Store, test: LoadTest) -> list[dict[str, Any]]:
    return list(store.runs.collection.find({"loadTestId": test.id}, {"_id": False}))


def test_delete_between_plan_and_record_leaves_no_run(store: Store, test_doc: LoadTest) -> None:
    plan = plan_run(store, "api", RunOptions(), "ann")
    delete_test(store, "api", force=True)
    with pytest.raises(NotFound, match="was deleted while the run was starting"):
        record_pending(store, plan)
    assert runs_of(store, test_doc) == []


def test_start_inside_the_deletion_gives_up(
    store: Store, test_doc: LoadTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start records its run just after the deletion took the test away."""
    plan = plan_run(store, "api", RunOptions(), "ann")
    take = store.tests.take
    outcome: list[BaseException] = []

    def take_then_start(test_id: str) -> dict[str, Any] | None:
        taken = take(test_id)
        try:
            record_pending(store, plan)
        except NotFound as exc:
            outcome.append(exc)
        return taken

    monkeypatch.setattr(store.tests, "take", take_then_start)
    result = delete_test(store, "api", force=True)
    assert result.test.id == test_doc.id
    assert len(outcome) == 1  # the start saw the test gone and removed its own run
    assert store.tests.find_by_id(test_doc.id) is None
    assert runs_of(store, test_doc) == []


def test_deletion_inside_the_start_puts_the_test_back(
    store: Store, test_doc: LoadTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deletion runs whole just after the start inserted its run, before its check."""
    plan = plan_run(store, "api", RunOptions(), "ann")
    insert = store.runs.insert
    outcome: list[BaseException] = []

    def insert_then_delete(run: Any) -> Any:
        inserted = insert(run)
        try:
            delete_test(store, "api", force=True)
        except Conflict as exc:
            outcome.append(exc)
        return inserted

    monkeypatch.setattr(store.runs, "insert", insert_then_delete)
    run = record_pending(store, plan)
    assert len(outcome) == 1 and "run in progress" in str(outcome[0])
    kept = store.tests.find_by_id(test_doc.id)
    assert kept is not None and kept.model_dump() == test_doc.model_dump()
    assert [r["id"] for r in runs_of(store, test_doc)] == [run.id]


def test_run_recorded_before_the_deletion_refuses_it(store: Store, test_doc: LoadTest) -> None:
    run = record_pending(store, plan_run(store, "api", RunOptions(), "ann"))
    with pytest.raises(Conflict, match="run in progress"):
        delete_test(store, "api", force=True)
    assert store.tests.find_by_id(test_doc.id) is not None
    assert [r["id"] for r in runs_of(store, test_doc)] == [run.id]


def test_cli_start_whose_test_vanishes_fails_cleanly(
    cli: Cli, tmp_path: Path, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`runs start` through the CLI, the test deleted just after the lease was taken."""
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("from locust import HttpUser\n")
    ok(
        cli(
            "tests", "create", "--name", "api", "--target-url", "http://127.0.0.1:1",
            "--locustfile", str(locustfile),
        )
    )
    real_take_lease = runs_service.take_lease

    def take_lease_then_delete(store: Store, plan: Any, notify: Any = None) -> bool:
        taken = real_take_lease(store, plan, notify)
        delete_test(store, plan.test.id, force=True)  # `tests delete --force` elsewhere
        return taken

    import loadmgr.service.lifecycle.start as run_start

    monkeypatch.setattr(run_start, "take_lease", take_lease_then_delete)
    result = cli("runs", "start", "api")
    line = error_line(result, 4)
    assert "test 'api' was deleted while the run was starting; nothing ran" in line
    assert mongo_db.load_tests.count_documents({}) == 0
    assert mongo_db.load_test_runs.count_documents({}) == 0
    lease = mongo_db.cluster_leases.find_one({"_id": lease_id("local")})
    assert lease is not None and lease["runId"] is None  # released
