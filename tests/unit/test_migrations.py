"""`db migrate` and the first use of an older database, on mongomock."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import mongomock
import pytest

from loadmgr.errors import DatabaseError
from loadmgr.models import Regression, Scope
from loadmgr.service.migration import schema as migrations
from loadmgr.service.migration.schema import SCHEMA_VERSION, ensure_schema, migrate
from loadmgr.store import Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def run_doc(run_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": run_id,
        "loadTestId": "t1",
        "name": run_id,
        "tenantId": None,
        "envId": None,
        "targetUsers": 5,
        "spawnRate": 1.0,
        "durationSeconds": 40,
        "status": "Finished",
        "stopReason": "duration",
        "finalStats": {"totals": {"requests": 100, "failures": 1}},
        "createdAt": NOW,
        **fields,
    }


FAILED_THRESHOLD = {
    "expression": "p95<500ms",
    "metric": "p95",
    "op": "<",
    "limit": 500.0,
    "actual": 812.0,
    "passed": False,
}
# What an older loadmgr stored, and what each run's verdict is once recomputed.
OLD_RUNS: dict[str, tuple[dict[str, Any], str | None]] = {
    "stopped-early": ({"stopReason": "user", "verdict": "passed"}, "aborted"),
    "outside": (
        {"stopReason": "user", "error": "Locust was stopped outside loadmgr"},
        "aborted",
    ),
    "regressed": (
        {
            "verdict": "passed",
            "baselineChecks": [Regression("rps", 100.0, 50.2, 0.498, 0.1, True).to_document()],
        },
        "failed",
    ),
    "threshold": ({"thresholdResults": [FAILED_THRESHOLD], "verdict": "failed"}, "failed"),
    "all-failed": ({"finalStats": {"totals": {"requests": 30, "failures": 30}}}, "failed"),
    "lost": ({"status": "Failed", "stopReason": "lost", "finalStats": None}, "error"),
    "no-start": ({"status": "Failed", "stopReason": "error", "error": "busy"}, "error"),
    "quiet": ({}, None),
    # The Go control plane's documents: lowercase keys, its own status for an early stop.
    "go-stopped": ({"status": "Stopped", "stopReason": None, "finalStats": None}, "aborted"),
    "odd": (
        {"thresholdResults": "junk", "baselineChecks": [1, {"x": 2}], "finalStats": "?"},
        None,
    ),
}


@pytest.fixture
def database() -> Any:
    db = mongomock.MongoClient()["loadmgr"]
    for run_id, (fields, _) in OLD_RUNS.items():
        db.load_test_runs.insert_one(run_doc(run_id, **fields))
    db.load_test_runs.insert_one(run_doc("going", status="Running", verdict=None))
    db.load_test_runs.insert_one(
        run_doc("theirs", tenantId="b", stopReason="user", verdict="passed")
    )
    return db


def store_of(db: Any, scope: Scope | None = None) -> Store:
    return Store(db, scope or Scope(), "mongodb://mock")


def verdicts(db: Any) -> dict[str, Any]:
    return {doc["id"]: doc.get("verdict") for doc in db.load_test_runs.find()}


def test_migrate_recomputes_every_ended_runs_verdict(database: Any) -> None:
    # Started in a scope: a database has one schema, so every tenant's runs are migrated.
    report = migrate(store_of(database, Scope("a", "x")), "admin")
    assert (report.from_version, report.to_version) == (0, SCHEMA_VERSION)
    assert report.step(1).examined == len(OLD_RUNS) + 1
    found = verdicts(database)
    for run_id, (_, expected) in OLD_RUNS.items():
        assert found[run_id] == expected, run_id
    assert found["theirs"] == "aborted"
    assert found["going"] is None  # a run still going has no verdict yet
    regressed = database.load_test_runs.find_one({"id": "regressed"})
    assert [r["kind"] for r in regressed["verdictReasons"]] == ["baseline"]
    assert regressed["verdictReasons"][0]["message"].startswith("rps is 49.8% worse")
    outside = database.load_test_runs.find_one({"id": "outside"})
    assert outside["verdictReasons"][0]["message"] == "Locust was stopped outside loadmgr"
    # Derived fields only: what the run recorded and its audit fields are left alone.
    assert "updatedAt" not in regressed and regressed["stopReason"] == "duration"
    meta = database.loadmgr_meta.find_one({"_id": "schema"})
    assert meta["version"] == SCHEMA_VERSION and meta["updatedBy"] == "admin"
    assert meta["history"][-1]["runsExamined"] == report.step(1).examined


def test_migrate_is_idempotent(database: Any) -> None:
    store = store_of(database)
    first = migrate(store, "admin")
    after = list(database.load_test_runs.find({}, {"_id": False}))
    assert first.changed > 0
    assert migrate(store, "admin").steps == []  # nothing pending
    again = migrate(store, "admin", rerun=True)
    assert again.examined == first.examined and again.changed == 0
    assert list(database.load_test_runs.find({}, {"_id": False})) == after
    assert database.loadmgr_meta.find_one({"_id": "schema"})["version"] == SCHEMA_VERSION


def test_migrate_pages_through_many_runs(database: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "PAGE", 3)
    report = migrate(store_of(database), "admin")
    assert report.step(1).examined == len(OLD_RUNS) + 1
    assert verdicts(database)["quiet"] is None


def test_first_use_of_an_older_database_migrates_with_one_line(database: Any) -> None:
    lines: list[str] = []
    ensure_schema(store_of(database), "ann", lines.append)
    assert len(lines) == 1
    assert lines[0].startswith(f"note: upgraded the database from schema 0 to {SCHEMA_VERSION}")
    assert verdicts(database)["stopped-early"] == "aborted"
    ensure_schema(store_of(database), "ann", lines.append)  # at its version: one read, silent
    assert len(lines) == 1


def test_a_fresh_database_is_stamped_quietly() -> None:
    db = mongomock.MongoClient()["fresh"]
    lines: list[str] = []
    ensure_schema(store_of(db), "ann", lines.append)
    assert lines == [] and db.loadmgr_meta.find_one({"_id": "schema"})["version"] == SCHEMA_VERSION


def test_a_newer_database_is_left_alone_with_a_note(database: Any) -> None:
    database.loadmgr_meta.insert_one({"_id": "schema", "version": SCHEMA_VERSION + 1})
    lines: list[str] = []
    ensure_schema(store_of(database), "ann", lines.append)
    assert len(lines) == 1 and "newer than this loadmgr knows" in lines[0]
    assert verdicts(database)["stopped-early"] == "passed"


def test_a_user_who_may_not_write_is_told_what_to_run(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(database)

    def refuse(*_: Any, **__: Any) -> int:
        raise DatabaseError("MongoDB refused the request: not authorized")

    monkeypatch.setattr(store.runs.__class__, "set_fields", refuse)
    lines: list[str] = []
    ensure_schema(store, "reader", lines.append)  # the command goes on
    assert len(lines) == 1 and "'loadmgr db migrate' as a user who may write" in lines[0]
    assert database.loadmgr_meta.find_one({"_id": "schema"}) is None
