"""Runs end to end: real Locust (local cluster, and a master with two workers), real store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import create_test_argv, loadmgr_command, reaped
from tests.locust_servers import DEMO_LOCUSTFILE, pid_alive
from tests.polling import wait_for

pytestmark = pytest.mark.integration


def create_test(cli: Any, target_url: str, name: str = "demo", *extra: str) -> dict[str, Any]:
    result = cli(
        *create_test_argv(name, target_url, DEMO_LOCUSTFILE),
        "--users",
        "4",
        "--spawn-rate",
        "4",
        "--duration",
        "5s",
        "--max-duration",
        "2m",
        *extra,
        "-o",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    return result.json()  # type: ignore[no-any-return]


def local_locust_pids(home: Path) -> list[int]:
    """Live processes running a locustfile copied under this LOADMGR_HOME."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(home) in cmdline and "locust" in cmdline and pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def signal_once_running(
    process: subprocess.Popen[bytes], mongo_db: Any, signum: int
) -> tuple[bytes, bytes]:
    """Sends `signum` to a foreground `runs start` once its run is Running; its output."""
    with reaped(process):
        assert wait_for(
            lambda: mongo_db.load_test_runs.find_one({"status": "Running"}) is not None,
            timeout=60,
        )
        process.send_signal(signum)
        return process.communicate(timeout=90)


def lease_of(mongo_db: Any, run_id: str) -> Any:
    return mongo_db.cluster_leases.find_one({"runId": run_id})


def test_full_run_on_local_cluster(cli, mongo_db, target_server, isolated_env):
    create_test(cli, target_server.url)
    result = cli("runs", "start", "demo", "--interval", "2", "--workers", "1", "-o", "json")
    assert result.exit_code == 0, result.stderr
    run = result.json()
    assert run["status"] == "Finished"
    assert run["stopReason"] == "duration"
    assert run["verdict"] is None
    assert run["finishedAt"] and run["startedAt"]
    assert run["locustfileSha256"]
    # What Locust counted is what the target received, but for requests in flight when
    # run_time killed the users (at most one per user): those reached the target uncounted.
    totals = run["finalStats"]["totals"]
    assert totals["requests"] > 0
    received = sum(target_server.counts().values())
    assert 0 <= received - totals["requests"] <= 4
    per_request = {r["name"]: r["numRequests"] for r in run["finalStats"]["requestStats"]}
    assert sum(per_request.values()) == totals["requests"]
    intervals = list(mongo_db.metrics_timeseries.find({"loadTestRunId": run["id"]}))
    assert len(intervals) >= 2
    assert [i["seq"] for i in intervals] == sorted({i["seq"] for i in intervals})
    assert intervals[-1]["totalRequests"] == totals["requests"]
    # lastMetrics is the run's last interval (the seconds read at its end), not an earlier
    # one's rates beside the final totals.
    assert run["lastMetrics"]["seq"] == max(i["seq"] for i in intervals)
    assert run["lastMetrics"]["totalRequests"] == totals["requests"]
    # Its error rate is of those same totals, the run's so far (issue 20, item 2).
    last = run["lastMetrics"]
    assert last["errorRate"] == last["totalFailures"] / last["totalRequests"]
    # Every interval that carried load says so: its own window's users and state, not
    # those of the poll after the stop that stored it (issue 20, item 3).
    for interval in intervals:
        if interval["intervalRequests"]:
            assert interval["state"] in ("spawning", "running"), interval["seq"]
            assert interval["currentUsers"] > 0, interval["seq"]
    # Nothing left: the lease is free and no Locust process of ours is alive.
    assert lease_of(mongo_db, run["id"]) is None
    assert wait_for(lambda: not local_locust_pids(isolated_env), timeout=15)
    # The run is found afterwards.
    listed = cli("runs", "list", "--test", "demo", "-o", "json").json()
    assert [r["id"] for r in listed] == [run["id"]]
    shown = cli("runs", "show", run["id"], "-o", "json").json()
    assert shown["finalStats"] == run["finalStats"]
    table = cli("runs", "show", run["id"])
    assert "Finished" in table.stdout and "requests" in table.stdout


def test_run_on_master_with_two_workers_matches_locust(
    cli, mongo_db, target_server, locust_master_with_workers
):
    locust = locust_master_with_workers(DEMO_LOCUSTFILE, workers=2)
    assert cli("clusters", "add", "remote", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "remote-demo", "--cluster", "remote")
    result = cli("runs", "start", "remote-demo", "--interval", "2", "-o", "json")
    assert result.exit_code == 0, result.stderr
    run = result.json()
    assert run["status"] == "Finished" and run["stopReason"] == "duration"
    with locust.client() as client:
        own = client.stats()  # Locust's own final report, long after its cache expired
    own_by_name = {(e["method"], e["name"]): e for e in own["stats"]}
    final = run["finalStats"]
    assert final["totals"]["requests"] == own_by_name[("", "Aggregated")]["num_requests"]
    assert final["totals"]["failures"] == own_by_name[("", "Aggregated")]["num_failures"]
    for entry in final["requestStats"]:
        theirs = own_by_name[(entry["method"], entry["name"])]
        assert entry["numRequests"] == theirs["num_requests"]
        assert entry["numFailures"] == theirs["num_failures"]
    assert final["workerCount"] == 2 or run["lastMetrics"].get("workerCount") == 2
    assert lease_of(mongo_db, run["id"]) is None


def test_thresholds_decide_the_exit_code(cli, mongo_uri, target_server):
    # The verdict, not the length, is checked: a short run serves.
    create_test(
        cli, target_server.url, "judged", "--threshold", "error_rate<50%", "--duration", "2s"
    )
    passed = cli("runs", "start", "judged", "--interval", "2", "--workers", "0", "-o", "json")
    assert passed.exit_code == 0, passed.stderr
    assert passed.json()["verdict"] == "passed"
    failed = cli(
        "runs",
        "start",
        "judged",
        "--interval",
        "2",
        "--workers",
        "0",
        "--threshold",
        "max<0.001ms",
        "-o",
        "json",
    )
    assert failed.exit_code == 1, failed.stderr
    run = failed.json()
    assert run["verdict"] == "failed"
    results = {r["expression"]: r["passed"] for r in run["thresholdResults"]}
    assert results == {"error_rate<50%": True, "max<0.001ms": False}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "5m"], "above the test's maximum"),
        (["--spawn-rate", "0"], "--spawn-rate"),
        (["--users", "-1"], "--users"),
        (["--duration", "soon"], "--duration"),
        (["--threshold", "p95<<3"], "p95<<3"),
        (["--interval", "0.5"], "--interval"),
        (["--interval", "61"], "--interval"),
        (["--interval", "100000"], "--interval"),
        (["--interval", "nan"], "--interval"),
        (["--interval", "inf"], "--interval"),
        (["--lost-timeout", "1s"], "--lost-timeout"),
        (["--lost-timeout", "2h"], "--lost-timeout"),
        (["--if-busy", "maybe"], "--if-busy"),
    ],
)
def test_impossible_overrides_store_nothing(cli, mongo_db, target_server, args, message):
    create_test(cli, target_server.url)
    result = cli("runs", "start", "demo", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert mongo_db.load_test_runs.count_documents({}) == 0
    assert mongo_db.cluster_leases.count_documents({"runId": {"$ne": None}}) == 0


def test_unknown_test_and_cluster(cli, mongo_uri, target_server):
    assert cli("runs", "start", "nope").exit_code == 4
    create_test(cli, target_server.url)
    assert cli("runs", "start", "demo", "--cluster", "ghost").exit_code == 4
    assert cli("runs", "show", "ghost-run").exit_code == 4
    assert cli("runs", "stop", "ghost-run").exit_code == 4


def test_unreachable_cluster_fails_the_run_and_frees_the_lease(cli, mongo_db, target_server):
    from loadmgr.store.embedded import free_port

    url = f"http://127.0.0.1:{free_port()}"
    assert cli("clusters", "add", "dead", "--url", url, "-q").exit_code == 0
    assert cli("clusters", "check", "dead").exit_code == 6
    create_test(cli, target_server.url, "doomed", "--cluster", "dead")
    result = cli("runs", "start", "doomed", "-o", "json")
    assert result.exit_code == 6
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    run = mongo_db.load_test_runs.find_one({})
    assert run["status"] == "Failed" and run["stopReason"] == "error" and run["error"]
    assert mongo_db.cluster_leases.find_one({"_id": "dead"})["runId"] is None


def test_busy_cluster_fail_skip(cli, mongo_db, target_server, locust_standalone):
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "one", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "busy", "--cluster", "one")
    mongo_db.cluster_leases.insert_one(
        {"_id": "one", "runId": "someone-else", "expiresAt": _in_seconds(600)}
    )
    assert cli("runs", "start", "busy", "--if-busy", "fail").exit_code == 5
    skipped = cli("runs", "start", "busy", "--if-busy", "skip")
    assert skipped.exit_code == 0 and "skipped" in skipped.stderr
    assert mongo_db.load_test_runs.count_documents({}) == 0


def _in_seconds(seconds: float) -> Any:
    from datetime import datetime, timedelta, timezone

    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def test_racing_starts_have_one_winner(cli, mongo_db, target_server, locust_standalone):
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "race", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "racer", "--cluster", "race", "--duration", "4s")
    processes = [
        subprocess.Popen(
            [*loadmgr_command(), "runs", "start", "racer", "--interval", "2", "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    codes = sorted(p.wait(timeout=120) for p in processes)
    for p in processes:
        p.stdout.close()  # type: ignore[union-attr]
        p.stderr.close()  # type: ignore[union-attr]
    assert codes == [0, 5, 5, 5]
    assert mongo_db.load_test_runs.count_documents({}) == 1


def start_detached(cli: Any, test: str, *extra: str) -> dict[str, Any]:
    result = cli("runs", "start", test, "--detach", "--interval", "2", *extra, "-o", "json")
    assert result.exit_code == 0, result.stderr
    run = result.json()
    assert run["status"] == "Running"
    return run  # type: ignore[no-any-return]


def collector_pid(mongo_db: Any, run_id: str) -> int:
    return int(mongo_db.load_test_runs.find_one({"id": run_id})["collector"]["pid"])


def test_detached_run_stopped_by_runs_stop(cli, mongo_db, target_server, isolated_env):
    create_test(cli, target_server.url, "long", "--duration", "60s")
    run = start_detached(cli, "long", "--workers", "0")
    pid = collector_pid(mongo_db, run["id"])
    assert pid_alive(pid)
    assert (isolated_env / "logs" / f"run-{run['id']}.log").exists()
    stopped = cli("runs", "stop", run["id"], "-o", "json")
    assert stopped.exit_code == 0, stopped.stderr
    doc = stopped.json()
    assert doc["status"] == "Finished" and doc["stopReason"] == "user"
    assert doc["finalStats"]["totals"]["requests"] > 0
    assert wait_for(lambda: not pid_alive(pid), timeout=30)
    assert wait_for(lambda: not local_locust_pids(isolated_env), timeout=15)
    assert lease_of(mongo_db, run["id"]) is None
    again = cli("runs", "stop", run["id"])
    assert again.exit_code == 0 and "already Finished" in again.stderr


def test_ctrl_c_stops_and_records_the_run(cli, mongo_db, target_server, isolated_env):
    create_test(cli, target_server.url, "interrupted", "--duration", "60s")
    process = subprocess.Popen(
        [
            *loadmgr_command(),
            "runs",
            "start",
            "interrupted",
            "--interval",
            "2",
            "--workers",
            "1",
            "-o",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = signal_once_running(process, mongo_db, signal.SIGINT)
    assert process.returncode == 130, err.decode()
    run = json.loads(out)
    assert run["status"] == "Finished" and run["stopReason"] == "user"
    assert lease_of(mongo_db, run["id"]) is None
    assert wait_for(lambda: not local_locust_pids(isolated_env), timeout=15)


def test_sigterm_behaves_like_ctrl_c(cli, mongo_db, target_server, locust_standalone):
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "term", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "terminated", "--cluster", "term", "--duration", "60s")
    process = subprocess.Popen(
        [*loadmgr_command(), "runs", "start", "terminated", "--interval", "2", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    signal_once_running(process, mongo_db, signal.SIGTERM)
    assert process.returncode == 130
    run = mongo_db.load_test_runs.find_one({})
    assert run["status"] == "Finished" and run["stopReason"] == "user"
    with locust.client() as client:
        assert client.stats()["state"] == "stopped"


def test_killed_collector_is_taken_over_by_follow(
    cli, mongo_db, target_server, locust_master_with_workers
):
    # No staleness delay: a collector whose pid on this host is gone is taken over at once.
    locust = locust_master_with_workers(DEMO_LOCUSTFILE, workers=2)
    assert cli("clusters", "add", "k8s", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "orphan", "--cluster", "k8s", "--duration", "9s")
    run = start_detached(cli, "orphan")
    os.kill(collector_pid(mongo_db, run["id"]), signal.SIGKILL)
    assert wait_for(
        lambda: any(r.get("stale") for r in cli("runs", "list", "-o", "json").json()),
        timeout=30,
    )
    listed = cli("runs", "list")
    assert "stale" in listed.stdout
    followed = cli("runs", "follow", run["id"], "-o", "json")
    assert followed.exit_code == 0, followed.stderr
    doc = followed.json()
    assert doc["status"] == "Finished" and doc["stopReason"] == "duration"
    with locust.client() as client:
        own = client.stats()
    aggregated = next(e for e in own["stats"] if e["name"] == "Aggregated")
    assert doc["finalStats"]["totals"]["requests"] == aggregated["num_requests"]
    # The collector that took over filled the dead one's seconds from the plugin's buffer.
    intervals = list(mongo_db.metrics_timeseries.find({"loadTestRunId": run["id"]}))
    assert sum(i["intervalRequests"] for i in intervals) == aggregated["num_requests"]
    assert sorted(i["seq"] for i in intervals) == list(range(1, len(intervals) + 1))
    assert lease_of(mongo_db, run["id"]) is None


def test_a_local_run_whose_master_is_gone_fails_at_once_on_take_over(
    cli, mongo_db, target_server, isolated_env
):
    """Issue 20, item 9: after kill -9 of a detached local run's collector (its Locust
    dies with it), `runs follow` retried "cannot reach Locust" for the whole lost-timeout."""
    create_test(cli, target_server.url, "orphan3", "--duration", "120s")
    run = start_detached(cli, "orphan3", "--workers", "0", "--lost-timeout", "60s")
    os.kill(collector_pid(mongo_db, run["id"]), signal.SIGKILL)
    assert wait_for(lambda: not local_locust_pids(isolated_env), timeout=15)
    began = time.monotonic()
    followed = cli("runs", "follow", run["id"], "-o", "json")
    assert time.monotonic() - began < 20, followed.stderr
    assert followed.exit_code == 6, followed.stderr
    doc = mongo_db.load_test_runs.find_one({"id": run["id"]})
    assert doc["status"] == "Failed" and doc["stopReason"] == "lost"
    assert "master" in doc["error"] and "retrying" not in followed.stderr
    assert lease_of(mongo_db, run["id"]) is None


def test_killed_collector_finalised_by_stop(
    cli, mongo_db, target_server, locust_standalone, monkeypatch
):
    monkeypatch.setenv("LOADMGR_STALE_AFTER_SEC", "4")
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "solo", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "orphan2", "--cluster", "solo", "--duration", "60s")
    run = start_detached(cli, "orphan2")
    os.kill(collector_pid(mongo_db, run["id"]), signal.SIGKILL)
    assert wait_for(lambda: cli("runs", "list", "-o", "json").json()[0].get("stale"), timeout=30)
    stopped = cli("runs", "stop", run["id"], "-o", "json")
    assert stopped.exit_code == 0, stopped.stderr
    doc = stopped.json()
    assert doc["status"] == "Finished" and doc["stopReason"] == "user"
    with locust.client() as client:
        assert client.stats()["state"] == "stopped"
    assert lease_of(mongo_db, run["id"]) is None


def test_locust_lost_mid_run(cli, mongo_db, target_server, tmp_path):
    from loadmgr.locust.local import LocalCluster

    locust = LocalCluster(DEMO_LOCUSTFILE, workers=0, log_dir=tmp_path / "lost").start()
    try:
        assert cli("clusters", "add", "frail", "--url", locust.base_url, "-q").exit_code == 0
        create_test(cli, target_server.url, "lost", "--cluster", "frail", "--duration", "60s")
        run = start_detached(cli, "lost", "--lost-timeout", "5s")
        locust.stop()  # the master vanishes mid-run
        assert wait_for(
            lambda: mongo_db.load_test_runs.find_one({"id": run["id"]})["status"] == "Failed",
            timeout=60,
        )
    finally:
        locust.stop()
    doc = mongo_db.load_test_runs.find_one({"id": run["id"]})
    assert doc["stopReason"] == "lost"
    assert mongo_db.cluster_leases.find_one({"_id": "frail"})["runId"] is None
    follow = cli("runs", "follow", run["id"])
    assert follow.exit_code == 6


def test_if_busy_wait_queues_until_the_lease_frees(cli, mongo_db, target_server, locust_standalone):
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "queue", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "queued", "--cluster", "queue", "--duration", "3s")
    mongo_db.cluster_leases.insert_one(
        {"_id": "queue", "runId": "someone-else", "expiresAt": _in_seconds(3)}
    )
    result = cli(
        "runs",
        "start",
        "queued",
        "--if-busy",
        "wait",
        "--wait-timeout",
        "60s",
        "--interval",
        "2",
        "-o",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    assert "waiting" in result.stderr
    assert result.json()["status"] == "Finished"


def test_follow_watches_a_live_run_to_its_end(cli, mongo_db, target_server, locust_standalone):
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "watch", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "watched", "--cluster", "watch", "--duration", "6s")
    run = start_detached(cli, "watched")
    followed = cli("runs", "follow", run["id"], "-o", "json")
    assert followed.exit_code == 0, followed.stderr
    doc = followed.json()
    assert doc["status"] == "Finished" and doc["id"] == run["id"]
    assert "taking over" not in followed.stderr
    assert "requests=" in followed.stderr  # the intervals were shown as they came


def test_abort_on_fail_stops_a_doomed_run_early(cli, mongo_db, target_server, locust_standalone):
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "strict", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "doomed-max", "--cluster", "strict", "--duration", "90s")
    result = cli(
        "runs",
        "start",
        "doomed-max",
        "--interval",
        "2",
        "--threshold",
        "max<0.001ms",
        "--abort-on-fail",
        "-o",
        "json",
    )
    assert result.exit_code == 1, result.stderr
    run = result.json()
    assert run["status"] == "Finished" and run["stopReason"] == "threshold"
    assert run["verdict"] == "failed"
    started = datetime.fromisoformat(run["startedAt"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(run["finishedAt"].replace("Z", "+00:00"))
    assert (finished - started).total_seconds() < 45  # far short of the 90 s asked for
    with locust.client() as client:
        assert client.stats()["state"] == "stopped"
