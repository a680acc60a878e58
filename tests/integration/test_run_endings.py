"""How runs end, on real Locust (issue 10's "done when", issue 11 #4): stopped from another
terminal (aborted, exit 7), every request failing (failed, exit 1), --abort-on-fail on the
error rate, and a LOADMGR_HOME that cannot hold a local run's files."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import loadmgr_command, reaped
from tests.integration.test_runs import create_test, lease_of, local_locust_pids
from tests.polling import wait_for

pytestmark = pytest.mark.integration

MOSTLY_OK = '''
from locust import HttpUser, constant, task


class Mixed(HttpUser):
    wait_time = constant(0.01)

    @task(9)
    def ok(self):
        self.client.get("/")

    @task(1)
    def broken(self):
        self.client.get("/error")
'''

ALL_FAILING = '''
from locust import HttpUser, constant, task


class Lost(HttpUser):
    wait_time = constant(0.05)

    @task
    def missing(self):
        self.client.get("/missing")
'''


def _locustfile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.py"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_run_stopped_from_another_terminal_is_aborted_and_exits_7(
    cli, mongo_db, target_server, locust_standalone
):
    locust = locust_standalone()
    assert cli("clusters", "add", "shared", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "long", "--cluster", "shared", "--duration", "60s")
    foreground = subprocess.Popen(
        [*loadmgr_command(), "runs", "start", "long", "-o", "json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    with reaped(foreground):
        assert wait_for(
            lambda: (mongo_db.load_test_runs.find_one({}) or {}).get("status") == "Running", 60
        )
        run_id = mongo_db.load_test_runs.find_one({})["id"]
        stopped = cli("runs", "stop", run_id, "-o", "json")
        assert stopped.exit_code == 0, stopped.stderr
        _, err = foreground.communicate(timeout=60)
    assert foreground.returncode == 7, err.decode()
    run = mongo_db.load_test_runs.find_one({"id": run_id})
    assert run["verdict"] == "aborted" and run["stopReason"] == "user"
    assert [r["kind"] for r in run["verdictReasons"]][0] == "aborted"
    assert "runs stop" in run["verdictReasons"][0]["message"]
    assert lease_of(mongo_db, run_id) is None


def test_a_run_where_every_request_failed_is_failed_without_thresholds(
    cli, mongo_db, target_server, tmp_path
):
    create_test(cli, target_server.url, "lost", "--duration", "4s")
    updated = cli("tests", "update", "lost", "--locustfile",
                  str(_locustfile(tmp_path, ALL_FAILING)))
    assert updated.exit_code == 0, updated.stderr
    result = cli("runs", "start", "lost", "--workers", "0", "-o", "json")
    assert result.exit_code == 1, result.stderr
    run = result.json()
    assert run["verdict"] == "failed" and run["thresholds"] == []
    assert "no_success" in [r["kind"] for r in run["verdictReasons"]]


def test_abort_on_fail_stops_on_the_error_rate_within_two_intervals(
    cli, mongo_db, target_server, tmp_path
):
    create_test(cli, target_server.url, "flaky", "--duration", "60s", "--users", "10",
                "--spawn-rate", "10", "--threshold", "error_rate<1%")
    updated = cli("tests", "update", "flaky", "--locustfile",
                  str(_locustfile(tmp_path, MOSTLY_OK)))
    assert updated.exit_code == 0, updated.stderr
    result = cli("runs", "start", "flaky", "--workers", "0", "--interval", "1",
                 "--abort-on-fail", "-o", "json")
    assert result.exit_code == 1, result.stderr
    run = result.json()
    assert run["stopReason"] == "threshold" and run["verdict"] == "failed"
    intervals = list(mongo_db.metrics_timeseries.find({"loadTestRunId": run["id"]}))
    # The judge needs a few intervals with enough requests; then it stops within two.
    assert len(intervals) <= 8, len(intervals)
    lasted = (run["finishedAt"] and run["startedAt"]) and len(intervals)
    assert lasted, run


@pytest.mark.parametrize("where", ["runs", "spool"])
def test_a_home_that_cannot_hold_the_run_fails_it_cleanly(
    cli: Any, mongo_db, target_server, isolated_env, where
):
    create_test(cli, target_server.url, "homeless", "--duration", "60s")
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / where).write_text("a file where a directory belongs")
    result = cli("runs", "start", "homeless", "--workers", "0", "--interval", "1")
    assert result.exit_code in (2, 3), result.stderr
    assert "Traceback" not in result.stderr
    run = mongo_db.load_test_runs.find_one({})
    assert run["status"] == "Failed" and run["error"]
    assert lease_of(mongo_db, run["id"]) is None
    assert wait_for(lambda: not local_locust_pids(isolated_env), 15)
    if where == "spool":
        # The interval that met the full spool was stored all the same: MongoDB was up.
        assert mongo_db.metrics_timeseries.count_documents({"loadTestRunId": run["id"]}) >= 1


SLOW_TO_START = '''
import time

from locust import HttpUser, constant, task

time.sleep(4)  # a slow import: the local cluster is still starting when the signal comes


class Patient(HttpUser):
    wait_time = constant(0.1)

    @task
    def index(self):
        self.client.get("/")
'''


def test_a_signal_while_the_local_cluster_starts_never_swarms(
    cli, mongo_db, target_server, tmp_path, isolated_env
):
    import signal

    create_test(cli, target_server.url, "early", "--duration", "30s")
    updated = cli("tests", "update", "early", "--locustfile",
                  str(_locustfile(tmp_path, SLOW_TO_START)))
    assert updated.exit_code == 0, updated.stderr
    before = sum(target_server.counts().values())
    process = subprocess.Popen(
        [*loadmgr_command(), "runs", "start", "early", "--workers", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    with reaped(process):
        assert wait_for(lambda: bool(local_locust_pids(isolated_env)), 30)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    run = mongo_db.load_test_runs.find_one({})
    assert run["verdict"] == "aborted" and run["startedAt"] is None, run
    assert wait_for(lambda: not local_locust_pids(isolated_env), 15)
    assert sum(target_server.counts().values()) == before, "load was sent after the signal"
    assert lease_of(mongo_db, run["id"]) is None


@pytest.mark.parametrize("duration", ["1s", "2s"])
def test_a_run_over_before_the_first_poll_is_recorded_as_it_ended(
    cli, mongo_db, target_server, duration
):
    """Locust finished a 1-s test before loadmgr's first look (its numbers are cached for
    2 s): the swarm cleared its numbers and new ones stand, so the test ran. Before, the
    run waited 60 s for a start that had come and gone, and failed (exit 6)."""
    create_test(cli, target_server.url, "brief")
    result = cli("runs", "start", "brief", "--duration", duration, "--workers", "0", "-o", "json")
    assert result.exit_code == 0, result.stderr
    run = result.json()
    assert run["status"] == "Finished" and run["stopReason"] == "duration", run
    assert run["finalStats"]["totals"]["requests"] > 0
