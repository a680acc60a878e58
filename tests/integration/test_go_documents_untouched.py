"""Outside `db migrate`, loadmgr never writes to a document the Go control plane wrote
(issue 20, item 6): not the automatic verdict recomputation of old runs (it added `verdict`
to six Go runs), not any other writer of the store, whatever Go document it meets."""

from __future__ import annotations

import inspect
from datetime import datetime, timezone
from typing import Any

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmgr.errors import ValidationFailed
from loadmgr.models import MetricSnapshot, Scope
from loadmgr.service.migration.schema import ensure_schema, recompute_run_verdicts
from loadmgr.store import Store
from tests.conftest import error_line, ok
from tests.go_documents import go_runs, go_tests
from tests.go_fixtures import GO_COLLECTIONS, GO_TEST, RUN_AUTO, RUN_STOPPED

pytestmark = pytest.mark.integration


def everything(db: Any) -> dict[str, list[dict[str, Any]]]:
    return {name: list(db[name].find().sort("_id", 1)) for name in GO_COLLECTIONS}


def test_ordinary_commands_leave_go_documents_as_they_were(go_db, cli):
    before = everything(go_db)
    # The first command on a database older than this loadmgr upgrades its schema
    # (verdicts of ended runs): the Go service's runs are not loadmgr's to judge.
    ok(cli("tests", "list", "-o", "json"))
    ok(cli("runs", "list", "-o", "json"))
    ok(cli("runs", "show", RUN_AUTO))
    ok(cli("tests", "show", GO_TEST))
    ok(cli("metrics", "show", RUN_AUTO))
    ok(cli("db", "migrate", "--dry-run"))
    assert everything(go_db) == before
    assert go_db["loadmgr_meta"].count_documents({}) == 1  # the schema was upgraded


def test_stopping_a_running_go_run_is_refused_and_changes_nothing(go_db, cli):
    running = dict(go_db["load_test_runs"].find_one({"id": RUN_AUTO}))
    running.update(_id=ObjectId(), id="go-running", status="Running", finishedat=None)
    go_db["load_test_runs"].insert_one(running)
    before = everything(go_db)
    line = error_line(cli("runs", "stop", running["id"]), 2)
    assert "written by the Go control plane" in line
    assert everything(go_db) == before


def test_changing_a_go_test_is_refused_and_changes_nothing(go_db, cli):
    before = everything(go_db)
    assert "Go control plane" in error_line(cli("tests", "update", GO_TEST, "--tag", "x"), 2)
    assert "Go control plane" in error_line(cli("tests", "delete", GO_TEST, "--force"), 2)
    assert everything(go_db) == before


# -- every writer of the store, on every Go document -----------------------------------

NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)


def _snapshot(run_id: str) -> MetricSnapshot:
    return MetricSnapshot(loadTestRunId=run_id, timestamp=NOW, seq=1, totalRPS=1.0)


# Each writer of the store, called on a Go test (`t`) or run (`r`) by its id. A writer
# may refuse (ValidationFailed) or do nothing; it may never change the Go document.
RUN_WRITERS = {
    "update": lambda s, r: s.runs.update(r["id"], {"status": "Failed"}),
    "update_if_status": lambda s, r: s.runs.update(
        r["id"], {"status": "Stopping"}, only_if_status=[r["status"]]
    ),
    "heartbeat": lambda s, r: s.runs.heartbeat(r["id"], 0, {"heartbeatAt": NOW}),
    "claim": lambda s, r: s.runs.claim(r["id"], 0, {"heartbeatAt": NOW}),
    "claim_end_steps": lambda s, r: s.runs.claim_end_steps(r["id"]),
    "end_steps_done": lambda s, r: s.runs.end_steps_done(r["id"]),
    "claim_notifications": lambda s, r: s.runs.claim_notifications(r["id"]),
    "record_notifications": lambda s, r: s.runs.record_notifications(r["id"], [{"ok": True}]),
    "delete_pending": lambda s, r: s.runs.delete_pending(r["id"]),
    "delete_for_test": lambda s, r: s.runs.delete_for_test(r["loadtestid"]),
    "set_fields": lambda s, r: s.runs.set_fields([(r["_id"], {"verdict": "passed"})]),
    # `db prune`'s retention: a Go run is never dropped nor marked.
    "delete_ended": lambda s, r: s.runs.delete_ended(r["id"]),
    "set_intervals_kept": lambda s, r: s.runs.set_intervals_kept([r["id"]], {"state": "dropped"}),
    # The steady samples stored at a run's end: never on a Go run.
    "set_samples": lambda s, r: s.runs.set_samples(r["id"], {"v": 1}),
}
TEST_WRITERS = {
    "update": lambda s, t: s.tests.update(t["id"], 0, {"description": "changed"}),
    "update_any_version": lambda s, t: s.tests.update(t["id"], 1, {"description": "changed"}),
    "delete": lambda s, t: s.tests.delete(t["id"]),
    "take": lambda s, t: s.tests.take(t["id"]),
    # `apply`'s conditional writes: a Go document neither matches nor changes.
    "take_managed": lambda s, t: s.tests.take_managed(t["id"], "loadtests.toml"),
    "update_unchanged": lambda s, t: s.tests.update_unchanged(
        t["id"], t.get("updatedAt"), {"description": "changed"}
    ),
}
METRIC_WRITERS = {
    "save": lambda s, r: s.metrics.save([_snapshot(r["id"])]),
    "delete_for_runs": lambda s, r: s.metrics.delete_for_runs([r["id"]]),
    # `db migrate` making intervals compact: only loadmgr's plain ones match.
    "make_compact": lambda s, r: s.metrics.make_compact(
        [(d["_id"], {"encoding": 1}, ["hist"])
         for d in s.db["metrics_timeseries"].find({"loadTestRunId": r["id"]})]
    ),
    # `db prune`: merged windows and the intervals they cover match by seq, which no Go
    # interval has.
    "write_merged_windows": lambda s, r: s.metrics.write_merged_windows(
        [{"loadTestRunId": r["id"], "seq": 1, "mergedThrough": 10**6, "tenantId": None,
          "envId": None}]
    ),
    "delete_covered": lambda s, r: s.metrics.delete_covered(r["id"], 0, 10**6),
    "drop_own_for_run": lambda s, r: s.metrics.drop_own_for_run(r["id"]),
}
# Whole-database passes of the schema steps, which any command may start.
PASSES = {
    "recompute_run_verdicts": lambda s: recompute_run_verdicts(s),
    "ensure_schema": lambda s: ensure_schema(s, "tester", lambda _line: None),
}
# Writers that only insert a document of loadmgr's (never match an existing one).
INSERTS_ONLY = {"insert", "insert_new", "restore", "save", "put_back"}
WRITE_CALLS = (
    "update_one",
    "update_many",
    "find_one_and_update",
    "find_one_and_delete",
    "find_one_and_replace",
    "replace_one",
    "delete_one",
    "delete_many",
    "bulk_write",
    "insert_one",
    "insert_many",
)


def test_the_table_names_every_writer_of_the_shared_collections():
    """A new writer of a collection the Go service shares is added to the tables above."""
    store_type = {"runs": RUN_WRITERS, "tests": TEST_WRITERS, "metrics": METRIC_WRITERS}
    from loadmgr.store.load_tests import LoadTestRepository
    from loadmgr.store.metrics import MetricsRepository
    from loadmgr.store.runs import RunRepository

    classes = {"runs": RunRepository, "tests": LoadTestRepository, "metrics": MetricsRepository}
    for key, cls in classes.items():
        for name, method in inspect.getmembers(cls, inspect.isfunction):
            source = inspect.getsource(method)
            if not any(f".{call}(" in source for call in WRITE_CALLS):
                continue
            covered = {n.split("_if_")[0].split("_any_")[0] for n in store_type[key]}
            assert name in covered or name in INSERTS_ONLY, f"{key}.{name} is not tested"


def _insert(db: Any, collection: str, docs: list[dict[str, Any]]) -> None:
    if docs:
        db[collection].insert_many(docs)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(test=go_tests(), runs=st.lists(go_runs(), min_size=1, max_size=3), data=st.data())
def test_no_writer_changes_a_go_document(go_db, test, runs, data):
    for run in runs:
        run["loadtestid"] = test["id"]
    _insert(go_db, "load_tests", [test])
    _insert(go_db, "load_test_runs", runs)
    before = everything(go_db)
    store = Store(go_db, Scope())
    calls: list[tuple[str, Any]] = []
    for run in [*runs, *go_db["load_test_runs"].find({"id": {"$in": [RUN_AUTO, RUN_STOPPED]}})]:
        for name in data.draw(st.permutations(sorted(RUN_WRITERS))):
            calls.append((f"runs.{name}", lambda name=name, run=run: RUN_WRITERS[name](store, run)))
        for name, writer in METRIC_WRITERS.items():
            calls.append((f"metrics.{name}", lambda w=writer, run=run: w(store, run)))
    for go_test in go_db["load_tests"].find():
        for name, writer in TEST_WRITERS.items():
            calls.append((f"tests.{name}", lambda w=writer, t=go_test: w(store, t)))
    for name, run_pass in PASSES.items():
        calls.append((name, lambda p=run_pass: p(store)))
    for label, call in calls:
        try:
            call()
        except ValidationFailed as exc:
            assert "Go control plane" in exc.message, (label, exc.message)
    after = everything(go_db)
    ids = {name: {d["_id"] for d in docs} for name, docs in before.items()}
    # Only new documents of loadmgr's may appear (an interval `save` inserts).
    assert {n: [d for d in docs if d["_id"] in ids[n]] for n, docs in after.items()} == before
    go_db["load_test_runs"].delete_many({"id": {"$in": [r["id"] for r in runs]}})
    go_db["load_tests"].delete_one({"id": test["id"]})
    go_db["metrics_timeseries"].delete_many({"seq": {"$exists": True}})
