"""Baselines end to end: a nightly run compared with the test's baseline run."""

from __future__ import annotations

import pytest

from tests.integration.test_runs import create_test
from tests.locust_servers import DEMO_LOCUSTFILE

pytestmark = pytest.mark.integration


def test_regression_against_the_baseline_exits_1(
    cli, mongo_db, target_server, locust_standalone, tmp_path
):
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "solo", "--url", locust.base_url, "-q").exit_code == 0
    # Long enough for the significance test: at least 5 steady 1-s intervals a side.
    create_test(
        cli, target_server.url, "nightly", "--cluster", "solo", "--duration", "8s",
        "--spawn-rate", "100",
    )
    assert cli("runs", "start", "nightly", "--compare-baseline").exit_code == 2  # none yet
    first = cli("runs", "start", "nightly", "--interval", "1", "--users", "8", "-o", "json")
    assert first.exit_code == 0, first.stderr
    baseline_id = first.json()["id"]
    marked = cli("tests", "baseline", "nightly", baseline_id, "-o", "json")
    assert marked.exit_code == 0, marked.stderr
    assert marked.json()["baselineRunId"] == baseline_id
    # Detached, the background collector judges it the same way when the run ends: started
    # first on a Locust of its own, it loads alongside the run in the foreground below.
    spare = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "spare", "--url", spare.base_url, "-q").exit_code == 0
    detached = cli(
        "runs", "start", "nightly", "--users", "2", "--interval", "1", "--max-regression",
        "rps=10%", "--cluster", "spare", "--detach", "-q",
    )
    assert detached.exit_code == 0, detached.stderr
    run_id = detached.stdout.strip()
    # A quarter of the users: the throughput falls far more than the 10% allowed.
    second = cli(
        "runs", "start", "nightly", "--interval", "1", "--users", "2",
        "--max-regression", "rps=10%", "-o", "json",
    )
    assert second.exit_code == 1, second.stderr
    assert "regression: rps" in second.stderr
    run = second.json()
    assert run["status"] == "Finished"
    checks = run["baselineChecks"]
    assert [c["metric"] for c in checks] == ["rps"] and checks[0]["regressed"] is True
    # The regression is the run's verdict, stored and shown everywhere, not a side note.
    assert run["verdict"] == "failed" and run["baselineRunId"] == baseline_id
    assert [r["kind"] for r in run["verdictReasons"]] == ["baseline"]
    assert run["verdictReasons"][0]["message"].startswith("rps is ")
    assert mongo_db.load_test_runs.find_one({"id": run["id"]})["verdict"] == "failed"
    assert cli("runs", "follow", run_id).exit_code == 1
    listed = cli("runs", "list", "--verdict", "failed", "-q")
    assert sorted(listed.stdout.split()) == sorted([run["id"], run_id])
    assert "failed (rps vs baseline)" in cli("runs", "show", run["id"]).stdout
    report = tmp_path / "report.html"
    assert cli("metrics", "report", run["id"], "--html", str(report)).exit_code == 0
    html = report.read_text(encoding="utf-8")
    assert '<span class="badge failed">FAILED</span>' in html
    assert "limits this run was started with" in html and "allowed 10.0%" in html
    assert cli("runs", "follow", run["id"]).exit_code == 1
    assert cli("runs", "start", "nightly", "--max-regression", "p95=lots").exit_code == 2
    assert mongo_db.load_test_runs.count_documents({}) == 3
    stored = mongo_db.load_test_runs.find_one({"id": run_id})
    assert stored["verdict"] == "failed" and stored["baselineRunId"] == baseline_id
    assert stored["requestedChecks"] == {"baseline": {"rps": 0.1}}
    assert [c["regressed"] for c in stored["baselineChecks"]] == [True]
