"""Fault injection: MongoDB going away, crashes, an unwritable spool, lost workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest

from loadmgr.store.embedded import STANDALONE
from tests.conftest import loadmgr_command, ok, reaped, start_secantus, stop_process
from tests.integration.test_runs import collector_pid, create_test, start_detached
from tests.locust_servers import DEMO_LOCUSTFILE, pid_alive
from tests.polling import wait_for

pytestmark = pytest.mark.integration


class RestartableMongo:
    """A private SecantusDB that a test may kill and bring back on the same port."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        # Acknowledged writes must survive SIGKILL, as with a journaled mongod.
        self.process, self.port = start_secantus(self.data, "--sync-on-commit")
        self.uri = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def restart(self) -> None:
        from loadmgr.store.embedded import port_open

        executable = Path(sys.executable).parent / "secantusd-py"
        log = open(self.data.parent / "restart.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(executable), "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", str(self.data), "--log-level", "WARNING", STANDALONE,
             "--sync-on-commit"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        assert wait_for(lambda: port_open(self.port), timeout=60)

    def client(self) -> pymongo.MongoClient[dict[str, Any]]:
        return pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=10_000, tz_aware=True)


@pytest.fixture
def private_mongo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RestartableMongo]:
    server = RestartableMongo(tmp_path / "mongo")
    monkeypatch.setenv("LOADMGR_MONGO_URI", server.uri)
    monkeypatch.setenv("LOADMGR_DATABASE", f"faults_{uuid.uuid4().hex[:8]}")
    try:
        yield server
    finally:
        stop_process(server.process)


def runs_collection(server: RestartableMongo) -> Any:
    return server.client()[os.environ["LOADMGR_DATABASE"]]


def assert_no_interval_missing(db: Any, run_id: str) -> list[dict[str, Any]]:
    intervals = list(db.metrics_timeseries.find({"loadTestRunId": run_id}).sort("seq", 1))
    seqs = [i["seq"] for i in intervals]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    return intervals


def test_mongodb_outage_mid_run_loses_no_interval(
    cli, private_mongo, target_server, locust_standalone, tmp_path
):
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "solo", "--url", locust.base_url, "-q").exit_code == 0
    # 1-s intervals: the outage (two beats told) is over some 6 s in; had a busy machine's
    # restart outlasted the 14 s, the run's end would wait for MongoDB too.
    create_test(cli, target_server.url, "outage", "--cluster", "solo", "--duration", "14s")
    db = runs_collection(private_mongo)
    stderr_path = tmp_path / "run.err"
    with open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            [*loadmgr_command(), "runs", "start", "outage", "--interval", "1", "-o", "json"],
            stdout=subprocess.PIPE, stderr=err,
        )
    with reaped(process):
        assert wait_for(lambda: db.metrics_timeseries.count_documents({}) >= 2, timeout=60)
        private_mongo.kill()
        assert wait_for(lambda: "MongoDB unavailable" in stderr_path.read_text(), timeout=30)
        assert wait_for(lambda: stderr_path.read_text().count("MongoDB unavailable") >= 2, 30)
        private_mongo.restart()
        out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, stderr_path.read_text()
    run = json.loads(out)
    assert run["status"] == "Finished" and run["stopReason"] == "duration"
    db = runs_collection(private_mongo)
    intervals = assert_no_interval_missing(db, run["id"])
    assert intervals[-1]["totalRequests"] == run["finalStats"]["totals"]["requests"]
    assert not any((Path(os.environ["LOADMGR_HOME"]) / "spool").glob("*.jsonl"))


def test_crash_during_outage_is_recovered_from_the_spool(
    cli, private_mongo, target_server, locust_standalone, monkeypatch, isolated_env
):
    monkeypatch.setenv("LOADMGR_STALE_AFTER_SEC", "4")
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "solo", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "crash", "--cluster", "solo", "--duration", "16s")
    run = start_detached(cli, "crash")
    db = runs_collection(private_mongo)
    pid = collector_pid(db, run["id"])
    assert wait_for(lambda: db.metrics_timeseries.count_documents({}) >= 1, timeout=30)
    private_mongo.kill()
    spool = isolated_env / "spool" / f"{run['id']}.jsonl"
    assert wait_for(lambda: spool.exists() and len(spool.read_text().splitlines()) >= 2, 30)
    os.kill(pid, signal.SIGKILL)  # the collector dies while MongoDB is away
    assert wait_for(lambda: not pid_alive(pid), timeout=10)
    spooled = len(spool.read_text().splitlines())
    private_mongo.restart()
    followed = cli("runs", "follow", run["id"], "-o", "json")
    assert followed.exit_code == 0, followed.stderr
    assert followed.json()["status"] == "Finished"
    db = runs_collection(private_mongo)
    intervals = assert_no_interval_missing(db, run["id"])
    assert len(intervals) >= spooled + 1
    assert not spool.exists()


def test_mongodb_unreachable_at_start_starts_no_load(
    cli, target_server, locust_standalone, mongo_uri, monkeypatch
):
    from loadmgr.store.embedded import free_port

    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "solo", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "nodb", "--cluster", "solo")
    monkeypatch.setenv(
        "LOADMGR_MONGO_URI", f"mongodb://u:hunter22@127.0.0.1:{free_port()}/?directConnection=true"
    )
    result = cli("runs", "start", "nodb", "--server-selection-timeout", "1000")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: ") and "hunter22" not in result.stderr
    with locust.client() as client:
        stats = client.stats()
    assert stats["state"] == "ready"
    assert sum(target_server.counts().values()) == 0


def test_unwritable_spool_stops_the_run(
    cli, mongo_db, target_server, locust_standalone, isolated_env
):
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "solo", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "blind", "--cluster", "solo", "--duration", "60s")
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "spool").write_text("not a directory")
    result = cli("runs", "start", "blind", "--interval", "2")
    assert result.exit_code == 3
    assert "error: cannot write the interval spool" in result.stderr
    run = mongo_db.load_test_runs.find_one({})
    assert run["status"] == "Failed" and run["stopReason"] == "error"
    assert "spool" in run["error"]
    with locust.client() as client:
        assert wait_for(lambda: client.stats()["state"] == "stopped", timeout=15)
    assert mongo_db.cluster_leases.find_one({"_id": "solo"})["runId"] is None


def test_lost_worker_is_recorded(cli, mongo_db, target_server, locust_master_with_workers):
    locust = locust_master_with_workers(DEMO_LOCUSTFILE, workers=2)
    assert cli("clusters", "add", "pair", "--url", locust.base_url, "-q").exit_code == 0
    # The duration only bounds the wait for the loss: once recorded, the run is stopped.
    create_test(cli, target_server.url, "halved", "--cluster", "pair", "--duration", "60s")
    run = start_detached(cli, "halved")
    assert wait_for(
        lambda: mongo_db.metrics_timeseries.find_one({"workerCount": 2}) is not None, 30
    )
    worker = locust.pids[-1]
    os.kill(worker, signal.SIGKILL)
    assert wait_for(
        lambda: mongo_db.metrics_timeseries.find_one(
            {"loadTestRunId": run["id"], "workerCount": 1}
        ) is not None,
        timeout=40,
    )
    ok(cli("runs", "stop", run["id"]))
    assert wait_for(
        lambda: mongo_db.load_test_runs.find_one({"id": run["id"]})["status"] == "Finished",
        timeout=90,
    )
    log = (Path(os.environ["LOADMGR_HOME"]) / "logs" / f"run-{run['id']}.log").read_text()
    assert "workers: 2 → 1" in log
    # Recorded on the run, once (issue 21, item 6): not only in a log nobody reads.
    events = mongo_db.load_test_runs.find_one({"id": run["id"]})["events"]
    assert [e["kind"] for e in events] == ["worker-lost"], events
    assert events[0]["detail"].startswith("workers: 2 → 1")
    shown = cli("runs", "show", run["id"])
    assert "worker-lost: workers: 2 → 1" in shown.stdout, shown.stdout
    as_json = cli("runs", "show", run["id"], "-o", "json").json()
    assert [e["kind"] for e in as_json["events"]] == ["worker-lost"]


def test_a_paused_then_flapping_mongodb_loses_no_interval_and_sets_none_aside(
    cli, private_mongo, target_server, locust_standalone, tmp_path
):
    """Issue 21, item 4: MongoDB SIGSTOPped (pymongo's client-side timeouts, code 50, once
    set intervals aside), then flapping: the summed intervals are Locust's totals. The
    duration only bounds the faults (a busy machine is slow to show them): once they are
    over and an interval more is stored, the run is stopped rather than waited out."""
    locust = locust_standalone(DEMO_LOCUSTFILE)
    assert cli("clusters", "add", "solo", "--url", locust.base_url, "-q").exit_code == 0
    create_test(cli, target_server.url, "paused", "--cluster", "solo", "--duration", "60s")
    db = runs_collection(private_mongo)
    stderr_path = tmp_path / "run.err"

    def unavailable() -> int:
        return stderr_path.read_text().count("MongoDB unavailable")

    with open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            [*loadmgr_command(), "runs", "start", "paused", "--interval", "1", "-o", "json"],
            stdout=subprocess.PIPE, stderr=err,
        )
    with reaped(process):
        assert wait_for(lambda: db.metrics_timeseries.count_documents({}) >= 2, timeout=60)
        private_mongo.process.send_signal(signal.SIGSTOP)
        try:
            assert wait_for(lambda: unavailable() >= 4, timeout=60)  # several beats lost
        finally:
            private_mongo.process.send_signal(signal.SIGCONT)
        for _ in range(3):  # flapping: away for a beat, back for an interval
            stored = db.metrics_timeseries.count_documents({})
            seen = unavailable()
            private_mongo.process.send_signal(signal.SIGSTOP)
            try:
                assert wait_for(lambda: unavailable() > seen, timeout=30)  # noqa: B023
            finally:
                private_mongo.process.send_signal(signal.SIGCONT)
            assert wait_for(
                lambda: db.metrics_timeseries.count_documents({}) > stored, timeout=30  # noqa: B023
            )
        assert process.poll() is None, "the run ended before its faults were over"
        ok(cli("runs", "stop", db.load_test_runs.find_one({})["id"]))
        out, _ = process.communicate(timeout=120)
    assert process.returncode == 7, stderr_path.read_text()  # stopped before its duration
    run = json.loads(out)
    assert run["status"] == "Finished" and run["stopReason"] == "user", run
    intervals = assert_no_interval_missing(db, run["id"])
    assert sum(i["intervalRequests"] for i in intervals) == run["finalStats"]["totals"]["requests"]
    assert "refused" not in stderr_path.read_text()
    assert not any((Path(os.environ["LOADMGR_HOME"]) / "spool").glob("*"))
