"""The Locust client, stats builder and local cluster against a real Locust 2.47.

Standalone and master + 2 workers, loaded against the demo target on loopback. Short runs
(4–5 s, 5 users) keep the suite fast on two cores; every wait polls with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from loadmgr.errors import ClusterError
from loadmgr.locust.client import LocustClient
from loadmgr.locust.local import LocalCluster, LocalClusterError, free_ports
from loadmgr.locust.stats import SnapshotBuilder, final_stats
from loadmgr.models import MetricSnapshot
from loadmgr.models.stats.order import REQUEST_KEYS, TOTAL_KEYS, out_of_order
from tests import locust_servers
from tests.polling import wait_for

pytestmark = pytest.mark.integration

# Fixtures of tests/locust_servers.py, bound here until conftest re-exports them.
target_server = locust_servers.target_server
locust_standalone = locust_servers.locust_standalone
locust_master_with_workers = locust_servers.locust_master_with_workers
pid_alive = locust_servers.pid_alive

REPO = Path(__file__).resolve().parents[2]
USERS = 5
LOCUSTFILE = locust_servers.WEB_USER_LOCUSTFILE + """
    @task(2)
    def index(self):
        self.client.get("/")
"""
# Requests that take 121–127 ms, recorded through Locust's own `events.request`: its
# histogram counts them as 120 and 130, its min and max stay exact (issue 20, item 1).
FIXED_LATENCY_LOCUSTFILE = """\
import random

from locust import User, constant, task


class Fixed(User):
    wait_time = constant(0.01)

    @task
    def hit(self):
        self.environment.events.request.fire(
            request_type="GET", name="/fixed", response_time=121.0 + random.random() * 6,
            response_length=0, exception=None, context={},
        )
"""
# Locust's own final report, printed at shutdown: "  Aggregated   1610   261(16.21%) | ..."
REPORT_TOTAL = re.compile(r"^\s*Aggregated\s+(\d+)\s+(\d+)\(", re.MULTILINE)


def now() -> datetime:
    return datetime.now(timezone.utc)


def collect_until_stopped(
    client: LocustClient, builder: SnapshotBuilder, deadline_sec: float
) -> list[MetricSnapshot]:
    """Poll like the run service does until Locust stops by itself."""
    snapshots: list[MetricSnapshot] = []

    def stopped() -> bool:
        payload = client.stats()
        snapshot = builder.build(payload, now())
        if snapshot is not None:
            snapshots.append(snapshot)
        return bool(payload["state"] == "stopped")

    assert wait_for(stopped, timeout=deadline_sec, interval=0.5), "Locust did not stop by itself"
    return snapshots


def check_in_order(snapshots: list[MetricSnapshot], final: dict[str, Any]) -> None:
    """min ≤ p50 ≤ … ≤ p99 ≤ max and avg within [min, max] in every set written."""
    sets = [(final["totals"], TOTAL_KEYS, "finalStats")]
    sets += [(item, REQUEST_KEYS, f"finalStats {item['name']}") for item in final["requestStats"]]
    for snapshot in snapshots:
        document = snapshot.model_dump()
        sets.append((document, TOTAL_KEYS, f"interval {snapshot.seq}"))
        sets += [(item, REQUEST_KEYS, f"interval {snapshot.seq} {item['name']}")
                 for item in document["requestStats"]]
    broken = [f"{where}: {out_of_order(numbers, keys)}" for numbers, keys, where in sets
              if out_of_order(numbers, keys)]
    assert not broken, broken


def counts_by_entry(rows: list[dict[str, str]]) -> dict[str, tuple[int, int]]:
    return {row["Name"]: (int(row["Request Count"]), int(row["Failure Count"])) for row in rows}


def check_final_is_locusts_own(client: LocustClient, final: dict[str, Any]) -> None:
    """The final stats equal what Locust serves uncached (its CSV is computed per request)."""
    rows = client.requests_csv()
    expected = counts_by_entry(rows)
    totals = final["totals"]
    assert (totals["requests"], totals["failures"]) == expected["Aggregated"]
    for item in final["requestStats"]:
        assert (item["numRequests"], item["numFailures"]) == expected[item["name"]]
    assert sum(item["numRequests"] for item in final["requestStats"]) == totals["requests"]


def check_target_saw_the_same(target: Any, final: dict[str, Any]) -> None:
    """What the target answered matches Locust, give or take requests cut off at stop."""
    received = target.counts()
    for item in final["requestStats"]:
        in_flight = received.get(item["name"], 0) - item["numRequests"]
        assert 0 <= in_flight <= USERS, (item["name"], received, item["numRequests"])


def check_report_in_log(log_path: Path, final: dict[str, Any]) -> None:
    match = REPORT_TOTAL.findall(log_path.read_text())
    assert match, f"no final report in {log_path}"
    requests, failures = map(int, match[-1])
    assert (requests, failures) == (final["totals"]["requests"], final["totals"]["failures"])


def run_and_check(cluster: LocalCluster, target: Any, run_time: int, workers: int | None) -> None:
    client = cluster.client()
    sent_at = now()
    started = client.start_swarm(USERS, 10, target.url, run_time, poll_interval=0.2)
    assert started["state"] in ("spawning", "running")
    builder = SnapshotBuilder("run-real", started_at=sent_at, tenant_id="t1", env_id="e1", seq=1)

    snapshots = collect_until_stopped(client, builder, run_time + 20)
    elapsed = (now() - sent_at).total_seconds()
    assert elapsed >= run_time - 0.5  # Locust stopped on its run_time timer, not earlier

    payload = client.wait_final_stats(30)
    final = final_stats(payload, client.requests_csv())
    last = builder.build(payload, now(), force=True)
    assert last is not None
    snapshots.append(last)

    running = [s for s in snapshots if s.state in ("spawning", "running")]
    assert any(s.intervalRequests > 0 and s.totalRPS > 0 for s in running)
    # Workers leave and re-register around a stop, so only running snapshots are exact.
    assert all(s.workerCount == workers for s in running)
    assert all((s.workerCount is None) == (workers is None) for s in snapshots)
    assert all(s.intervalRequests >= 0 and 0 <= s.errorRate <= 1 for s in snapshots)
    assert not any(s.metadata.get("reset") for s in snapshots)
    # The intervals add up to Locust's totals: nothing lost or counted twice.
    assert sum(s.intervalRequests for s in snapshots) == final["totals"]["requests"]
    assert sum(s.intervalFailures for s in snapshots) == final["totals"]["failures"]
    assert [s.seq for s in snapshots] == list(range(1, len(snapshots) + 1))

    totals = final["totals"]
    assert totals["requests"] > 20 and totals["failures"] > 0
    assert {item["name"] for item in final["requestStats"]} == {"/", "/api/items", "/missing"}
    assert final["errors"][0]["name"] == "/missing" and "404" in final["errors"][0]["error"]
    assert final["errors"][0]["occurrences"] == totals["failures"]
    assert totals["p90ResponseMs"] is not None and totals["p99ResponseMs"] is not None
    check_in_order(snapshots, final)
    check_final_is_locusts_own(client, final)
    check_target_saw_the_same(target, final)

    cluster.stop()
    check_report_in_log(cluster.log_paths[0], final)


def test_standalone_run_with_run_time(
    locust_standalone: Any, target_server: Any, locustfile: Path
) -> None:
    run_and_check(locust_standalone(locustfile), target_server, run_time=4, workers=None)


def test_master_with_two_workers_run_with_run_time(
    locust_master_with_workers: Any, target_server: Any, locustfile: Path
) -> None:
    cluster = locust_master_with_workers(locustfile, workers=2)
    assert cluster.client().check().workerCount == 2
    run_and_check(cluster, target_server, run_time=5, workers=2)


def test_latencies_of_a_121_to_127_ms_target_read_in_order(
    locust_standalone: Any, tmp_path: Path
) -> None:
    locustfile = tmp_path / "fixed.py"
    locustfile.write_text(FIXED_LATENCY_LOCUSTFILE)
    client = locust_standalone(locustfile).client()
    sent_at = now()
    client.start_swarm(2, 10, "http://127.0.0.1:9", 3, poll_interval=0.2)
    builder = SnapshotBuilder("run-fixed", started_at=sent_at)
    snapshots = collect_until_stopped(client, builder, 25)
    final = final_stats(client.wait_final_stats(30), client.requests_csv())
    totals = final["totals"]
    assert totals["requests"] > 20
    # Locust says min ~121 and max ~127 but p95 120 and p99 130: stored at one resolution.
    assert (totals["minResponseMs"], totals["maxResponseMs"]) == (120.0, 130.0)
    check_in_order(snapshots, final)


def test_stop_ends_the_load_at_once(
    locust_standalone: Any, target_server: Any, locustfile: Path
) -> None:
    client = locust_standalone(locustfile).client()
    client.start_swarm(USERS, 10, target_server.url, 60, poll_interval=0.2)
    assert wait_for(lambda: client.stats()["stats"][-1]["num_requests"] > 0, timeout=15)
    assert client.stop()["success"] is True
    payload = client.wait_final_stats(10)
    assert payload["state"] == "stopped" and payload["user_count"] == 0
    received = sum(target_server.counts().values())
    assert received >= final_stats(payload)["totals"]["requests"] > 0


def test_master_without_workers_is_refused_before_swarming(
    locust_master_with_workers: Any, target_server: Any
) -> None:
    cluster = locust_master_with_workers(workers=0, distributed=True)
    client = cluster.client()
    with pytest.raises(ClusterError, match="has no workers connected"):
        client.start_swarm(USERS, 10, target_server.url, 5)
    assert client.worker_count() == 0
    assert client.stats()["state"] == "ready"  # never swarmed
    assert target_server.counts() == {}


def test_unreachable_cluster_is_a_cluster_error() -> None:
    (port,) = free_ports(1)
    client = LocustClient(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(ClusterError) as caught:
        client.stats()
    assert (
        caught.value.message
        == f"cannot reach Locust at http://127.0.0.1:{port}: connection refused"
    )
    status = client.check()
    assert status.reachable is False and status.error == caught.value.message


def test_local_cluster_leaves_no_process_behind(tmp_path: Path) -> None:
    with LocalCluster(locust_servers.DEMO_LOCUSTFILE, workers=2, log_dir=tmp_path) as cluster:
        pids = cluster.pids
        assert len(pids) == 3 and all(pid_alive(pid) for pid in pids)
        status = cluster.client().check()
        assert status.isDistributed and status.workerCount == 2 and status.version == "2.47.0"
        assert cluster.base_url.startswith("http://127.0.0.1:")
    assert not any(pid_alive(pid) for pid in pids)
    assert [path.name for path in cluster.log_paths] == [
        "master.log",
        "worker-1.log",
        "worker-2.log",
    ]


def test_local_cluster_temporary_logs_are_removed() -> None:
    with LocalCluster(locust_servers.DEMO_LOCUSTFILE, workers=0) as cluster:
        log_dir = cluster.log_dir
        assert cluster.client().check().isDistributed is False
        assert log_dir.is_dir()
    assert not log_dir.exists()


def test_local_cluster_dies_with_a_killed_parent(tmp_path: Path) -> None:
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from loadmgr.locust.local import LocalCluster\n"
        "cluster = LocalCluster(Path(sys.argv[1]), workers=1, log_dir=Path(sys.argv[2])).start()\n"
        "print(json.dumps(cluster.pids), flush=True)\n"
        "while True:\n"
        "    time.sleep(60)  # killed by the test\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(locust_servers.DEMO_LOCUSTFILE), str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()  # returns "" if the script died first
        pids = json.loads(line)
        assert len(pids) == 2 and all(pid_alive(pid) for pid in pids)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
    assert wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout=20), pids


def test_bad_locustfile_reports_its_log(tmp_path: Path) -> None:
    bad = tmp_path / "bad_locustfile.py"
    bad.write_text("from locust import HttpUser\nimport module_that_does_not_exist_xyz\n")
    started = time.monotonic()
    with pytest.raises(LocalClusterError) as caught:
        LocalCluster(bad, workers=1, log_dir=tmp_path / "logs").start()
    error = caught.value
    assert time.monotonic() - started < 30
    assert error.message.startswith("local Locust master exited with code 1: ")
    assert "No module named 'module_that_does_not_exist_xyz'" in error.message
    assert "\n" not in error.message
    assert error.hint == f"full log: {tmp_path / 'logs' / 'master.log'}"
    assert error.log_path.is_file() and any("ModuleNotFoundError" in x for x in error.log_tail)
