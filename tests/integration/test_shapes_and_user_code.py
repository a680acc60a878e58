"""Locustfiles that drive or end their own run, and users that raise (issue 22, items 2, 3),
on the `local` cluster (real Locust, with the plugin). Plain `locust --headless` on the
same shapes (tests/shape_locustfiles.py) is compared in test_scenarios_beside_plain_locust.py.

- A stages shape shorter than --duration ends the run normally (`stopReason: shape`,
  verdict by thresholds, exit 0); one longer is stopped at --duration (`duration`), not
  5 s past it. Both record the shape (class, stages) on the test and the run, and the
  intervals hold the users the shape reached, not the swarm's.
- A shape that waits for a user count before stepping on.
- A locustfile that stops its own run (Locust's stop_on_threshold example): `locustfile`,
  a normal end, not `aborted`.
- Users that raise: a user crashing on start (1 of 5), a task raising 10 % of the time:
  stored with counts and where, a verdict reason (`failed`, or `error` with no request).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ok
from tests.integration.test_runs import create_test
from tests.shape_locustfiles import stages, waiting

pytestmark = pytest.mark.integration

STOPS_ITSELF = '''
import gevent
from locust import HttpUser, constant, events, task
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING, WorkerRunner


class Web(HttpUser):
    wait_time = constant(0.05)

    @task
    def missing(self):
        self.client.get("/missing")


def checker(environment):
    while environment.runner.state not in (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP):
        gevent.sleep(0.5)
        if environment.runner.stats.total.num_failures > 20:
            environment.runner.quit()
            return


@events.init.add_listener
def on_locust_init(environment, **_kwargs):
    if not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(checker, environment)
'''

RAISING = '''
import random

from locust import HttpUser, constant, task


class Crasher(HttpUser):
    fixed_count = 1  # one user of the 5, on whichever worker runs it

    def on_start(self):
        raise ValueError("cannot log in")

    @task
    def never(self):
        pass


class Web(HttpUser):
    wait_time = constant(0.05)

    @task
    def items(self):
        self.client.get("/api/items")
        if random.random() < 0.1:
            raise KeyError("token")
'''

ALL_CRASH = '''
from locust import HttpUser, constant, task


class Web(HttpUser):
    wait_time = constant(0.05)

    def on_start(self):
        raise RuntimeError("MULTIPLE_HOSTS is not set")

    @task
    def items(self):
        self.client.get("/api/items")
'''


def _run(
    cli: Any, tmp_path: Path, target: Any, name: str, text: str, *start: str
) -> tuple[Any, dict[str, Any]]:
    path = tmp_path / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    test = create_test(cli, target.url, name, "--locustfile", str(path), "--users", "5",
                       "--spawn-rate", "5")
    result = cli("runs", "start", name, "--interval", "1", "-o", "json", *start)
    return result, test


def _intervals(mongo_db: Any, run_id: str) -> list[dict[str, Any]]:
    return list(mongo_db.metrics_timeseries.find({"loadTestRunId": run_id}).sort("seq", 1))


def test_a_shape_shorter_than_the_duration_ends_the_run_normally(
    cli, mongo_db, target_server, tmp_path
):
    result, test = _run(cli, tmp_path, target_server, "short",
                        stages(6), "--duration", "30s",
                        "--threshold", "error_rate<1%")
    assert result.exit_code == 0, result.stderr
    assert test["shape"]["className"] == "Stages"
    assert [s["users"] for s in test["shape"]["stages"]] == [2, 6]
    run = result.json()
    assert run["stopReason"] == "shape" and run["verdict"] == "passed", run["verdictReasons"]
    assert run["shape"]["className"] == "Stages"
    assert "load shape Stages" in result.stderr and "swarming 5 users" not in result.stderr
    users = [i["currentUsers"] for i in _intervals(mongo_db, run["id"])]
    # The shape's users, not the swarm's 5. Not `min(users) == 2`: an interval holds the
    # users at its end, and on a busy machine the first may end after the 2-s first stage.
    assert max(users) == 6 and all(0 <= u <= 6 for u in users)
    assert run["lastMetrics"]["maxUsers"] == 6
    shown = ok(cli("runs", "show", run["id"][:8])).stdout
    assert "load shape Stages (2 stages, up to 6 users, 6s)" in shown
    assert "reached 6 users" in shown
    report = tmp_path / "report.html"
    ok(cli("metrics", "report", run["id"], "--html", str(report)))
    assert "load shape Stages (2 stages" in report.read_text(encoding="utf-8")


def test_a_shape_longer_than_the_duration_is_stopped_at_the_duration(
    cli, mongo_db, target_server, tmp_path
):
    result, _ = _run(cli, tmp_path, target_server, "long",
                     stages(60), "--duration", "5s")
    assert result.exit_code == 0, result.stderr
    run = result.json()
    assert run["stopReason"] == "duration" and run["verdict"] is None
    assert "the duration is up: stopping the load shape" in result.stderr
    took = (run["finishedAt"] and run["startedAt"]) and _seconds(run)
    assert took < 5 + 4, took  # not the old 5 s of grace past it on top of the settle


def _seconds(run: dict[str, Any]) -> float:
    from datetime import datetime

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (at(run["finishedAt"]) - at(run["startedAt"])).total_seconds()


def test_a_shape_that_waits_for_a_user_count(cli, mongo_db, target_server, tmp_path):
    result, test = _run(cli, tmp_path, target_server, "waiting", waiting(), "--duration", "40s")
    assert result.exit_code == 0, result.stderr
    assert test["shape"] == {"className": "WaitForUsers", "file": str(tmp_path / "waiting.py")}
    assert "WaitForUsers" in ok(cli("tests", "show", "waiting")).stdout
    run = result.json()
    assert run["stopReason"] == "shape"
    assert max(i["currentUsers"] for i in _intervals(mongo_db, run["id"])) == 5


def test_a_locustfile_that_stops_its_own_run_is_a_normal_end(
    cli, mongo_db, target_server, tmp_path
):
    result, _ = _run(cli, tmp_path, target_server, "selfstop", STOPS_ITSELF, "--duration", "30s")
    run = result.json()
    assert run["stopReason"] == "locustfile", (run["stopReason"], result.stderr)
    assert run["verdict"] == "failed"  # every request failed: judged, not aborted
    assert result.exit_code == 1


def test_users_that_raise_are_stored_and_fail_the_run(cli, mongo_db, target_server, tmp_path):
    result, _ = _run(cli, tmp_path, target_server, "raising", RAISING, "--duration", "6s")
    assert result.exit_code == 1, result.stderr
    run = result.json()
    kinds = {item["type"]: item for item in run["exceptions"]}
    assert kinds["ValueError"]["count"] == 1  # the user that crashed on start (1 of 5)
    assert kinds["ValueError"]["message"] == "cannot log in"
    assert kinds["ValueError"]["where"].endswith("in on_start")
    assert kinds["KeyError"]["count"] > 5 and kinds["KeyError"]["where"].endswith("in items")
    assert run["exceptionCount"] == sum(item["count"] for item in run["exceptions"])
    assert run["verdict"] == "failed"
    assert run["verdictReasons"][0]["kind"] == "exception"
    intervals = _intervals(mongo_db, run["id"])
    assert sum(i.get("exceptionCount", 0) for i in intervals) == run["exceptionCount"]
    shown = ok(cli("runs", "show", run["id"][:8])).stdout
    assert "ValueError at" in shown and "cannot log in" in shown
    report = tmp_path / "report.html"
    ok(cli("metrics", "report", run["id"], "--html", str(report)))
    html = report.read_text(encoding="utf-8")
    assert '<section id="exceptions">' in html and "cannot log in" in html


def test_users_that_all_crash_are_an_error_not_a_pass(cli, mongo_db, target_server, tmp_path):
    result, _ = _run(cli, tmp_path, target_server, "crash", ALL_CRASH, "--duration", "4s")
    assert result.exit_code == 6, result.stderr
    run = result.json()
    assert run["verdict"] == "error" and run["exceptionCount"] == 5
    assert run["verdictReasons"][0]["kind"] == "exception"
    assert "MULTIPLE_HOSTS is not set" in run["verdictReasons"][0]["message"]
