"""Issue 11 #1 against a real Locust already running someone else's swarm (another database
on the same Locust, say): a start that fails leaves it running; `--if-busy wait` waits
for it to end, then starts its own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from loadmgr.errors import ClusterBusy
from loadmgr.locust.client import LocustClient
from loadmgr.models import Scope
from loadmgr.service.runs.lease import lease_id, take_lease
from loadmgr.service.runs.options import RunOptions
from loadmgr.service.runs.plan import plan_run, record_pending
from loadmgr.service.runs.swarm import busy_wait_sec, start_run_swarm
from loadmgr.store import Store
from tests.conftest import CliResult, ok
from tests.locust_servers import DEMO_LOCUSTFILE
from tests.polling import wait_for

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]
THEIR_USERS = 3


@pytest.fixture
def theirs(locust_standalone: Callable[..., Any], target_server: Any) -> Iterator[LocustClient]:
    """A standalone Locust running a swarm loadmgr did not start (here: 60 s of load)."""
    cluster = locust_standalone(DEMO_LOCUSTFILE)
    other = LocustClient(cluster.base_url)  # someone else's tool, not our client
    other.swarm(THEIR_USERS, 10, target_server.url, 60)
    assert wait_for(lambda: other.stats()["state"] == "running", timeout=30)
    yield other
    other.close()


def still_running(client: LocustClient) -> bool:
    payload = client.stats()
    return payload["state"] == "running" and payload["user_count"] == THEIR_USERS


def create_remote_test(cli: Cli, url: str, target_url: str) -> None:
    ok(cli("clusters", "add", "shared", "--url", url))
    ok(
        cli(
            "tests", "create", "--name", "mine", "--target-url", target_url,
            "--cluster", "shared", "--locustfile", "deployed.py",
            "--users", "2", "--spawn-rate", "2", "--duration", "4s",
        )
    )


def test_failed_start_leaves_their_swarm_running(
    cli: Cli, mongo_db: Any, theirs: LocustClient, target_server: Any
) -> None:
    create_remote_test(cli, theirs.base_url, target_server.url)
    result = cli("runs", "start", "mine", "--interval", "2", "-o", "json")
    # Recorded Failed (printed), exit 5: the cluster is busy with a test that is not ours.
    assert result.exit_code == 5, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: Locust at {theirs.base_url} is already running a test (state running, 3 users)"
    ]
    assert "hint: it was not started by this run and was left running;" in result.stderr
    assert "Traceback" not in result.stderr
    # Their swarm was neither stopped nor re-swarmed (a /swarm resets the user count).
    assert still_running(theirs)
    runs = list(mongo_db.load_test_runs.find({}, {"_id": False}))
    assert [(r["status"], r["stopReason"]) for r in runs] == [("Failed", "error")]
    assert mongo_db.cluster_leases.find_one({"_id": "shared"})["runId"] is None


def test_if_busy_wait_waits_for_their_swarm_then_runs(
    mongo_uri: str, theirs: LocustClient, target_server: Any, cli: Cli
) -> None:
    create_remote_test(cli, theirs.base_url, target_server.url)
    store = Store.connect(mongo_uri, os.environ["LOADMGR_DATABASE"], Scope(), 5000)
    try:
        plan = plan_run(store, "mine", RunOptions(if_busy="wait", wait_timeout=90.0), "ann")
        plan.run.collector = {"interval": 2.0}
        assert take_lease(store, plan)
        run = record_pending(store, plan)
        assert busy_wait_sec(run) > 60
        said: list[str] = []
        ours = LocustClient(theirs.base_url)
        # Their swarm ends while we wait (as its run_time would end it).
        def notify(message: str) -> None:
            said.append(message)
            assert still_running(theirs)  # we are waiting, and have touched nothing
            theirs.stop()  # their test ends, by their own hand

        started = start_run_swarm(
            store, run, ours, start_timeout=30, worker_wait_sec=0, notify=notify
        )
        assert started.payload["state"] in ("spawning", "running")
        assert len(said) == 1 and "busy with a test this run did not start" in said[0]
        assert store.leases.holder(lease_id("shared"))["runId"] == run.id  # type: ignore[index]
        assert ours.stop()["success"] is True  # ours, so ours to stop
        ours.close()
    finally:
        store.close()


def test_failed_client_start_never_stops_theirs(theirs: LocustClient) -> None:
    """The client alone: a start that finds Locust busy, then the caller's clean-up."""
    ours = LocustClient(theirs.base_url)
    with pytest.raises(ClusterBusy):
        ours.start_swarm(2, 2, None, 4, poll_interval=0.2)
    assert ours.stop()["success"] is False  # what a collector's clean-up does
    assert still_running(theirs)
    ours.close()


def test_cli_if_busy_wait_gives_up_within_its_timeout_and_stops_nothing(
    cli: Cli, theirs: LocustClient, target_server: Any
) -> None:
    create_remote_test(cli, theirs.base_url, target_server.url)
    result = cli("runs", "start", "mine", "--if-busy", "wait", "--wait-timeout", "3s")
    assert result.exit_code == 5
    assert "already running a test" in result.stderr
    assert still_running(theirs)


def test_detached_if_busy_skip_skips_their_swarm_and_records_nothing(
    cli: Cli, mongo_db: Any, theirs: LocustClient, target_server: Any
) -> None:
    """Detached, the collector would only find their swarm after `runs start` returned, and
    record the run Failed: `--if-busy skip` looks first, and skips."""
    create_remote_test(cli, theirs.base_url, target_server.url)
    result = cli("runs", "start", "mine", "--detach", "--if-busy", "skip", "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "skipped: Locust at" in result.stderr
    assert "already running a test loadmgr did not start" in result.stderr
    assert mongo_db.load_test_runs.count_documents({}) == 0
    assert mongo_db.cluster_leases.find_one({"_id": "shared"})["runId"] is None
    assert still_running(theirs)
