"""Verdicts through the CLI on the real wire server: filters, views, exit codes, migration."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from loadmgr.models import Regression
from loadmgr.service.migration.schema import SCHEMA_VERSION
from tests.conftest import error_line, ok

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def run_doc(run_id: str, age_min: int, **fields: Any) -> dict[str, Any]:
    """A run as an older loadmgr stored it: its verdict said only what thresholds said."""
    return {
        "id": run_id,
        "loadTestId": "t-1",
        "testName": "checkout",
        "name": f"checkout {run_id}",
        "tenantId": None,
        "envId": None,
        "targetUsers": 5,
        "spawnRate": 1.0,
        "durationSeconds": 40,
        "status": "Finished",
        "stopReason": "duration",
        "locustClusterId": "local",
        "targetUrl": "http://127.0.0.1:1",
        "finalStats": {"totals": {"requests": 400, "failures": 4, "rps": 10.0}},
        "thresholdResults": [],
        "verdict": None,
        "createdAt": NOW - timedelta(minutes=age_min),
        "createdBy": "cron",
        "updatedAt": NOW,
        "updatedBy": "cron",
        "metadata": {},
        "lastMetrics": {},
        **fields,
    }


THRESHOLD = {
    "expression": "error_rate<1%",
    "metric": "error_rate",
    "op": "<",
    "limit": 0.01,
    "actual": 0.298,
    "passed": False,
}


@pytest.fixture
def old_database(mongo_db: Any) -> dict[str, str]:
    """Runs written before verdicts told the whole story (no schema version stored)."""
    docs = [
        run_doc(
            "run-passed",
            1,
            thresholdResults=[{**THRESHOLD, "actual": 0.0, "passed": True}],
            verdict="passed",
        ),
        run_doc(
            "run-stopped",
            2,
            stopReason="user",
            verdict="passed",
            error="Locust was stopped outside loadmgr",
        ),
        run_doc("run-threshold", 3, thresholdResults=[THRESHOLD], verdict="failed"),
        run_doc(
            "run-regressed",
            4,
            verdict="passed",
            baselineChecks=[Regression("rps", 20.0, 10.0, 0.5, 0.1, True).to_document()],
        ),
        run_doc(
            "run-lost",
            5,
            status="Failed",
            stopReason="lost",
            finalStats=None,
            error="Locust lost: no answer for 30s",
        ),
        run_doc("run-quiet", 6),
    ]
    mongo_db.load_test_runs.insert_many(docs)
    return {doc["id"]: doc["id"] for doc in docs}


def test_first_use_migrates_an_older_database_with_one_line(
    cli: Any, mongo_db: Any, old_database: dict[str, str]
) -> None:
    first = ok(cli("runs", "list", "-o", "json"))
    notes = first.stderr.splitlines()
    assert len(notes) == 1 and notes[0].startswith(
        f"note: upgraded the database from schema 0 to {SCHEMA_VERSION}: recomputed the "
        "verdicts of 6 runs"
    )
    verdicts = {run["id"]: run["verdict"] for run in first.json()}
    assert verdicts == {
        "run-passed": "passed",
        "run-stopped": "aborted",
        "run-threshold": "failed",
        "run-regressed": "failed",
        "run-lost": "error",
        "run-quiet": None,
    }
    assert mongo_db.loadmgr_meta.find_one({"_id": "schema"})["version"] == SCHEMA_VERSION
    second = ok(cli("runs", "list", "-q"))
    assert second.stderr == ""  # migrated once


def test_db_migrate_is_idempotent(cli: Any, mongo_db: Any, old_database: dict[str, str]) -> None:
    done = ok(cli("db", "migrate", "-o", "json"))
    report = done.json()
    assert (report["fromVersion"], report["toVersion"]) == (0, SCHEMA_VERSION)
    assert report["steps"][0]["examined"] == 6 and report["steps"][0]["changed"] == 6
    assert "6 examined, 6 changed" in done.stderr
    stored = list(mongo_db.load_test_runs.find({}, {"_id": False}))
    again = ok(cli("db", "migrate", "-o", "json"))
    assert again.json()["steps"] == [] and "nothing to do" in again.stderr
    rerun = ok(cli("db", "migrate", "--rerun", "-o", "json")).json()
    assert rerun["steps"][0]["examined"] == 6 and rerun["steps"][0]["changed"] == 0
    assert list(mongo_db.load_test_runs.find({}, {"_id": False})) == stored
    assert ok(cli("db", "migrate", "-q")).stdout == f"{SCHEMA_VERSION}\n"


def test_runs_list_filters_on_the_verdict(cli: Any, old_database: dict[str, str]) -> None:
    def ids(*verdicts: str) -> list[str]:
        args = [arg for verdict in verdicts for arg in ("--verdict", verdict)]
        return ok(cli("runs", "list", *args, "-q")).stdout.split()

    assert ids("aborted") == ["run-stopped"]
    assert ids("failed", "error") == ["run-threshold", "run-regressed", "run-lost"]
    assert ids("none") == ["run-quiet"]
    line = error_line(cli("runs", "list", "--verdict", "green"), 2)
    assert "invalid --verdict 'green'" in line
    assert "passed, failed, inconclusive, aborted, error, none" in line
    table = ok(cli("runs", "list"))
    for cell in ("aborted (stopped early)", "failed (error_rate<1%)", "failed (rps vs", "error"):
        assert cell in table.stdout


def test_runs_show_says_the_verdict_and_why(cli: Any, old_database: dict[str, str]) -> None:
    shown = ok(cli("runs", "show", "run-threshold"))
    assert "failed (error_rate<1%)" in shown.stdout
    assert "error_rate<1%: 29.80% (limit < 1%)" in shown.stdout
    assert "29.80%" in shown.stdout and "0.298" not in shown.stdout  # one unit everywhere
    stopped = ok(cli("runs", "show", "run-stopped"))
    assert "Locust was stopped outside loadmgr" in stopped.stdout
    as_json = ok(cli("runs", "show", "run-regressed", "-o", "json")).json()
    assert as_json["verdict"] == "failed"
    assert as_json["verdictReasons"][0]["kind"] == "baseline"
    assert as_json["verdictReasons"][0]["message"].startswith("rps is 50.0% worse")
    summary = ok(cli("metrics", "show", "run-lost", "-o", "json")).json()
    assert summary["verdict"] == "error"
    assert summary["verdictReasons"][0]["message"] == "Locust lost: no answer for 30s"


@pytest.mark.parametrize(
    ("run_id", "code"),
    [
        ("run-passed", 0),
        ("run-quiet", 0),
        ("run-threshold", 1),
        ("run-regressed", 1),
        ("run-stopped", 7),
        ("run-lost", 6),
    ],
)
def test_runs_follow_of_an_ended_run_exits_with_its_verdict(
    cli: Any, old_database: dict[str, str], run_id: str, code: int
) -> None:
    result = cli("runs", "follow", run_id, "-o", "json")
    assert result.exit_code == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.json()["id"] == run_id
