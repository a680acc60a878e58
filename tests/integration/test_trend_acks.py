"""`tests trend --ack/--unack/--acks` on the real wire server: an acknowledged step no
longer fails the gate, a new step after it does; bad input changes nothing."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest

from loadmgr.models import LoadTestRun
from tests.conftest import documents_of, error_line, ok
from tests.metrics_data import make_test, store_all
from tests.trend_data import nightly_runs, noisy, stepped

pytestmark = pytest.mark.integration

STEP_AT = 25
COLLECTIONS = ("load_tests", "load_test_runs")


@pytest.fixture
def stepped_runs(mongo_db: Any) -> list[LoadTestRun]:
    """36 nights of `acked`, p95 30% slower from night 26 on; and a test `other`."""
    test = make_test("acked")
    runs = nightly_runs(test, stepped(36, STEP_AT, seed=11))
    store_all(mongo_db, test, runs)
    other = make_test("other")
    store_all(mongo_db, other, nightly_runs(other, noisy(3, 1)))
    return runs


def _gate(cli: Any) -> Any:
    return cli("tests", "trend", "acked", "--fail-on-regression", "--metric", "p95", "-o", "json")


def test_an_acknowledged_step_passes_the_gate_and_a_new_step_after_it_fails(
    cli: Any, mongo_db: Any, stepped_runs: list[LoadTestRun]
) -> None:
    assert _gate(cli).exit_code == 1  # the step fails the gate until it leaves the window
    step = stepped_runs[STEP_AT]
    acked = ok(
        cli(
            "tests",
            "trend",
            "acked",
            "--ack",
            step.id[:8],
            "--reason",
            "  new TLS\nterminator  ",
            "-o",
            "json",
        )
    ).json()
    assert [(a["runId"], a["reason"]) for a in acked] == [(step.id, "new TLS terminator")]
    stored = mongo_db.load_tests.find_one({"name": "acked"})["trendAcks"]
    assert [a["runId"] for a in stored] == [step.id] and stored[0]["by"] and stored[0]["at"]
    passed = ok(_gate(cli))
    assert (
        "newest run: no regression regime since the change acknowledged"
        in ok(cli("tests", "trend", "acked", "--metric", "p95")).stdout
    )
    assert passed.json()  # the series is still shown, change point and all
    # A second step, 30% slower again, five nights after the acknowledged one's last.
    test = make_test("acked").model_copy(update={"id": stepped_runs[0].loadTestId})
    later = nightly_runs(test, [v * 1.69 for v in noisy(8, 3)])
    later = [
        run.model_copy(update={"createdAt": stepped_runs[-1].createdAt + timedelta(days=i + 1)})
        for i, run in enumerate(later)
    ]
    store_all(mongo_db, None, later)
    failed = _gate(cli)
    assert failed.exit_code == 1, failed.stderr
    assert "newest run: in a regression regime (p95" in failed.stderr
    assert "since the change acknowledged at run " + step.id[:8] in failed.stderr
    # Removed, the first step is judged again (and is still in the window).
    ok(cli("tests", "trend", "acked", "--unack", step.id))
    assert mongo_db.load_tests.find_one({"name": "acked"})["trendAcks"] == []


def test_acks_are_listed_as_table_json_and_csv(cli: Any, stepped_runs: list[LoadTestRun]) -> None:
    for run in (stepped_runs[10], stepped_runs[STEP_AT]):
        ok(cli("tests", "trend", "acked", "--ack", run.id, "--reason", f"expected {run.name}"))
    listed = ok(cli("tests", "trend", "acked", "--acks", "-o", "json")).json()
    assert [a["runId"] for a in listed] == [stepped_runs[10].id, stepped_runs[STEP_AT].id]
    rows = list(
        csv.DictReader(
            io.StringIO(ok(cli("tests", "trend", "acked", "--acks", "-o", "csv")).stdout)
        )
    )
    assert list(rows[0]) == ["runId", "runCreatedAt", "reason", "by", "at"]
    assert "expected acked night 26" in ok(cli("tests", "trend", "acked", "--acks")).stdout
    assert ok(cli("tests", "trend", "other", "--acks", "-o", "json")).json() == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--ack", "no-such-run-at-all", "--reason", "x"],
            4,
            "error: run 'no-such-run-at-all' not found",
        ),
        (["--ack", "OTHER", "--reason", "x"], 2, "error: run OTHER belongs to another test"),
        (["--ack", "STEP"], 2, "error: --ack needs a --reason"),
        (["--ack", "STEP", "--reason", " \n\t "], 2, "error: --ack needs a --reason"),
        (["--ack", "STEP", "--reason", "x" * 501], 2, "error: --reason is longer than 500"),
        (["--ack", "ACKED", "--reason", "again"], 2, "error: run ACKED is already acknowledged"),
        (["--reason", "x"], 2, "error: --reason goes with --ack RUN"),
        (["--ack", "STEP", "--reason", "x", "--acks"], 2, "error: give one of --ack RUN"),
        (["--unack", "STEP"], 4, "error: no acknowledged change at run 'STEP'"),
    ],
)
def test_bad_input_writes_nothing(
    cli: Any,
    mongo_db: Any,
    stepped_runs: list[LoadTestRun],
    args: list[str],
    code: int,
    message: str,
) -> None:
    ok(cli("tests", "trend", "acked", "--ack", stepped_runs[5].id, "--reason", "known"))
    other = mongo_db.load_test_runs.find_one({"name": {"$regex": "^other"}})["id"]
    names = {"OTHER": other, "STEP": stepped_runs[STEP_AT].id, "ACKED": stepped_runs[5].id}
    args = [names.get(a, a) for a in args]
    message = message.replace("OTHER", other).replace("ACKED", stepped_runs[5].id)
    message = message.replace("STEP", stepped_runs[STEP_AT].id)
    before = documents_of(mongo_db, COLLECTIONS)
    assert error_line(cli("tests", "trend", "acked", *args), code).startswith(message)
    assert documents_of(mongo_db, COLLECTIONS) == before
