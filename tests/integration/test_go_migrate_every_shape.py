"""`db migrate` converts every document the Go control plane can write, and loadmgr's read
commands work on them afterwards (issue 20, item 7): metadata holding numbers (doubles),
nested objects and lists, `tags: null`, `metadata: null`, null durations, a failed run
with `targetusers: 0` and `name: ""`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings

from loadmgr.models.meta import metadata_refusal
from tests.conftest import ok
from tests.go_documents import go_databases
from tests.go_fixtures import RUN_AUTO

pytestmark = pytest.mark.integration


def _insert(db: Any, generated: dict[str, list[dict[str, Any]]]) -> None:
    for collection, docs in generated.items():
        if docs:
            db[collection].insert_many(docs)


def _kept(metadata: Any) -> dict[str, Any]:
    """The Go metadata loadmgr keeps under its own keys (the rest is in `legacy`)."""
    if not isinstance(metadata, dict):
        return {}
    return {k: v for k, v in metadata.items() if k != "legacy" and not metadata_refusal(k, v)}


def test_the_issue_s_documents_migrate_and_read(go_db, cli):
    test = go_db["load_tests"].find_one()
    test.update(_id=ObjectId(), id="go-meta", name="go-meta", tags=None)
    test["metadata"] = {"retries": 3.0, "nested": {"a": [1.0, "x"]}, "list": [True, None]}
    failed = go_db["load_test_runs"].find_one({"id": RUN_AUTO})
    failed.update(
        _id=ObjectId(),
        id="go-failed",
        loadtestid="go-meta",
        name="",
        status="Failed",
        targetusers=0,
        durationseconds=None,
        startedat=None,
        finishedat=None,
        lastmetrics=None,
        metadata=None,
    )
    go_db["load_tests"].insert_one(test)
    go_db["load_test_runs"].insert_one(failed)
    report = ok(cli("db", "migrate", "-o", "json")).json()
    skipped = [s for c in report["goImport"]["collections"] for s in c["skipped"]]
    assert skipped == []
    shown = ok(cli("tests", "show", "go-meta", "-o", "json")).json()
    assert shown["metadata"]["retries"] == 3.0
    assert shown["metadata"]["nested"] == {"a": [1.0, "x"]}
    assert shown["tags"] == []
    ok(cli("tests", "show", "go-meta"))
    run = ok(cli("runs", "show", "go-failed", "-o", "json")).json()
    assert (run["status"], run["targetUsers"], run["name"]) == ("Failed", 0, "")
    assert run["durationSeconds"] == test["defaultdurationsec"]
    assert json.loads(run["metadata"]["legacy"])["durationseconds"] is None
    ok(cli("runs", "show", "go-failed"))
    # What `--meta k=v` writes stays a string.
    ok(cli("tests", "update", "go-meta", "--meta", "retries=4"))
    assert go_db["load_tests"].find_one({"id": "go-meta"})["metadata"]["retries"] == "4"


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=go_databases())
def test_every_generated_go_database_migrates_and_reads(go_db, cli, generated):
    _insert(go_db, generated)
    report = ok(cli("db", "migrate", "-o", "json")).json()
    skipped = [s for c in report["goImport"]["collections"] for s in c["skipped"]]
    assert skipped == []
    (test,) = generated["load_tests"]
    shown = ok(cli("tests", "show", test["id"], "-o", "json")).json()
    assert {k: v for k, v in shown["metadata"].items() if k != "legacy"} == _kept(test["metadata"])
    ok(cli("tests", "show", test["id"]))
    ok(cli("tests", "list"))
    ok(cli("runs", "list", "--test", test["id"]))
    for run in generated["load_test_runs"]:
        stored = ok(cli("runs", "show", run["id"], "-o", "json")).json()
        assert {k: v for k, v in stored["metadata"].items() if k != "legacy"} == _kept(
            run["metadata"]
        )
        ok(cli("runs", "show", run["id"]))
        ok(cli("metrics", "show", run["id"]))
