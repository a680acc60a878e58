"""Issue 21's leftovers, item 1: a `local` run's document pointed at another Locust master
on the same machine (another team's, on loopback) is never acted on.

Two real Locusts on this machine, both running a swarm: `ours`, the master the run's
collector recorded (`collector.localMaster`), and `theirs`. The run's `locustUrl` is
rewritten to `theirs`' port, as any writer of the database could; its collector is gone
(a dead pid of this machine), so `runs follow` takes it over and `runs stop` records its
end. Neither may stop or read `theirs`: each exits 6 with one line, and `theirs` runs on
with its users. The honest document (the address of `ours`) is stopped as before.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from loadmgr.locust.client import LocustClient
from loadmgr.locust.local import LocalCluster
from loadmgr.models import RunStatus
from loadmgr.service.runs.lease import process_here
from tests.conftest import CliResult, documents_of, error_line
from tests.locust_servers import DEMO_LOCUSTFILE
from tests.metrics_data import make_run, make_test, store_all
from tests.polling import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

Cli = Callable[..., CliResult]
USERS = 2
COLLECTIONS = ("load_test_runs", "metrics_timeseries", "cluster_leases")


def _swarmed(cluster: LocalCluster, target: Any) -> LocustClient:
    client = LocustClient(cluster.base_url)
    client.swarm(USERS, 10, target.url, 120)
    assert wait_for(lambda: client.stats()["state"] == "running", timeout=30)
    return client


def _running(client: LocustClient) -> bool:
    payload = client.stats()
    return payload["state"] == "running" and payload["user_count"] == USERS


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _orphan(mongo_db: Any, name: str, url: str, master: LocalCluster) -> str:
    """A Running local run whose collector (a dead pid here) recorded `master`."""
    test = make_test(name)
    run = make_run(
        test,
        status=RunStatus.RUNNING,
        locustClusterId="local",
        locustUrl=url,
        heartbeatAt=datetime.now(timezone.utc),
        finishedAt=None,
        stopReason=None,
        finalStats=None,
        collector={
            "interval": 1,
            "lostTimeout": 5,
            **process_here(_dead_pid()),
            "localMaster": process_here(master.pids[0]),
        },
    )
    store_all(mongo_db, test, [run])
    return run.id


def test_a_run_pointed_at_another_locust_never_touches_it(
    cli: Cli, mongo_db: Any, locust_standalone: Callable[..., Any], target_server: Any
) -> None:
    ours_cluster = locust_standalone(DEMO_LOCUSTFILE)
    theirs_cluster = locust_standalone(DEMO_LOCUSTFILE)
    ours, theirs = _swarmed(ours_cluster, target_server), _swarmed(theirs_cluster, target_server)
    try:
        forged = _orphan(mongo_db, "forged", theirs.base_url, ours_cluster)
        before = documents_of(mongo_db, COLLECTIONS)
        line = error_line(cli("runs", "follow", forged), 6)
        assert "is not its Locust master's" in line and "not contacted" in line
        assert _running(theirs) and _running(ours)
        assert documents_of(mongo_db, COLLECTIONS) == before  # not even claimed

        line = error_line(cli("runs", "stop", forged), 6)
        assert f"run {forged}: " in line and "is not its Locust master's" in line
        assert _running(theirs) and _running(ours)  # nothing sent to either
        ended = mongo_db.load_test_runs.find_one({"id": forged})
        assert ended["status"] != "Running" and "not contacted" in ended["error"]

        honest = _orphan(mongo_db, "honest", ours.base_url, ours_cluster)
        assert cli("runs", "stop", honest).exit_code == 0
        assert wait_for(lambda: ours.stats()["state"] == "stopped", timeout=30)
        assert _running(theirs)
    finally:
        ours.close()
        theirs.close()
