"""Issue 11 #1: a start never stops a swarm it did not start, and `--if-busy wait` waits
for Locust itself. LocustClient against recorded answers (`responses`); the service on
mongomock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import mongomock
import pytest
import responses

import loadmgr.locust.client as client_module
import loadmgr.service.runs.swarm as swarm_start
from loadmgr.errors import ClusterBusy, ClusterError, ExitCode, Interrupted
from loadmgr.locust.client import LocustClient
from loadmgr.models import LoadTest, Scope, utcnow
from loadmgr.service.runs.lease import lease_id, take_lease
from loadmgr.service.runs.options import RunOptions
from loadmgr.service.runs.plan import plan_run, record_pending
from loadmgr.service.runs.swarm import busy_wait_sec, start_run_swarm
from loadmgr.store import Store
from tests.unit.test_locust_client import BASE, stats_payload

STOPPED = {"success": True, "message": "Test stopped"}


@pytest.fixture
def mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[responses.RequestsMock]:
    monkeypatch.setattr(client_module, "STATS_CACHE_SEC", 0.05)  # a short cache window
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def paths(mock: responses.RequestsMock) -> list[str]:
    return [call.request.path_url for call in mock.calls]


# -- the client: what start_swarm and stop() send -----------------------------------------


def test_busy_locust_is_neither_swarmed_nor_stopped(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running", users=50))
    swarm = mock.post(f"{BASE}/swarm", json={"success": True})
    stop = mock.post(f"{BASE}/stop", json=STOPPED)
    client = LocustClient(BASE)
    with pytest.raises(ClusterBusy) as caught:
        client.start_swarm(5, 1.0, None, 10, poll_interval=0.01)
    assert caught.value.exit_code == ExitCode.CONFLICT
    assert "was left running" in (caught.value.hint or "")
    # The collector's clean-up after a failed start calls stop(): nothing is sent.
    assert client.stop()["success"] is False
    assert (swarm.call_count, stop.call_count) == (0, 0)


def assert_failed_start_stops_nothing(
    mock: responses.RequestsMock, match: str | None = None
) -> None:
    """The swarm fails to start (ClusterError matching `match`), and the clean-up's
    stop() that follows sends nothing: no swarm of ours is known to run."""
    stop = mock.post(f"{BASE}/stop", json=STOPPED)
    client = LocustClient(BASE)
    with pytest.raises(ClusterError, match=match):
        client.start_swarm(5, 1.0, None, 10, poll_interval=0.01)
    client.stop()
    assert stop.call_count == 0


def test_refused_swarm_stops_nothing(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("stopped"))
    mock.post(f"{BASE}/swarm", json={"success": False, "message": "Missing user_count"})
    assert_failed_start_stops_nothing(mock, "refused the swarm")


def test_swarm_whose_answer_is_lost_stops_nothing(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("stopped"))
    mock.post(f"{BASE}/swarm", body=ConnectionResetError("reset"))
    # Nothing stopped: if it started, its run_time ends it.
    assert_failed_start_stops_nothing(mock)


def test_master_without_workers_stops_nothing(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("ready", workers=0))
    mock.get(f"{BASE}/worker-count", json={"worker_count": 0})
    assert_failed_start_stops_nothing(mock, "no workers")


def test_our_accepted_swarm_that_never_starts_is_stopped_once(
    mock: responses.RequestsMock,
) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("stopped"))
    mock.post(f"{BASE}/swarm", json={"success": True, "message": "Swarming started"})
    stop = mock.post(f"{BASE}/stop", json=STOPPED)
    client = LocustClient(BASE)
    with pytest.raises(ClusterError, match="did not start the test"):
        client.start_swarm(5, 1.0, None, 10, start_timeout=0.1, poll_interval=0.01)
    assert stop.call_count == 1  # ours: a late start must not run unwatched
    client.stop()  # a clean-up afterwards: ours is stopped, whatever runs now is not ours
    assert stop.call_count == 1


def test_started_swarm_is_ours_to_stop(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("stopped"))
    mock.post(f"{BASE}/swarm", json={"success": True, "message": "Swarming started"})
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running", users=5))
    stop = mock.post(f"{BASE}/stop", json=STOPPED)
    client = LocustClient(BASE)
    client.start_swarm(5, 1.0, None, 10, poll_interval=0.01)
    assert client.stop() == STOPPED and stop.call_count == 1
    assert client.swarm_sent_mono is not None


def test_a_client_that_never_started_stops_whatever_runs(mock: responses.RequestsMock) -> None:
    stop = mock.post(f"{BASE}/stop", json=STOPPED)
    assert LocustClient(BASE).stop() == STOPPED  # `runs stop`, a take-over
    assert stop.call_count == 1


def busy_then_swarming(
    mock: responses.RequestsMock, busy_polls: int, state: str, users: int
) -> None:
    """Locust runs someone's test for `busy_polls` polls, then is free, accepts the swarm,
    and reports `state` with `users`."""
    for _ in range(busy_polls):
        mock.get(f"{BASE}/stats/requests", json=stats_payload("running", users=50))
    mock.get(f"{BASE}/stats/requests", json=stats_payload("stopped"))
    mock.post(f"{BASE}/swarm", json={"success": True, "message": "Swarming started"})
    mock.get(f"{BASE}/stats/requests", json=stats_payload(state, users=users))


def test_waits_while_locust_is_busy_then_swarms(mock: responses.RequestsMock) -> None:
    busy_then_swarming(mock, 3, "spawning", 1)
    seen: list[str] = []
    payload = LocustClient(BASE).start_swarm(
        5, 1.0, None, 10, wait_busy_sec=30, while_busy=lambda p: seen.append(p["state"]),
        poll_interval=0.01,
    )
    assert payload["state"] == "spawning"
    assert seen == ["running"] * 3
    assert paths(mock).count("/swarm") == 1 and "/stop" not in paths(mock)


def test_gives_up_waiting_and_says_how_long(mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running", users=50))
    with pytest.raises(ClusterBusy, match=r"gave up after waiting \d+s"):
        LocustClient(BASE).start_swarm(5, 1.0, None, 10, wait_busy_sec=0.2, poll_interval=0.01)
    assert set(paths(mock)) == {"/stats/requests"}


# -- the service: the run's policy, lease and heartbeat while waiting ----------------------


@pytest.fixture
def store() -> Store:
    store = Store(mongomock.MongoClient()["loadmgr"], Scope(), "mongodb://mock")
    store.tests.insert(
        LoadTest(name="api", targetUrl="http://127.0.0.1:1", locustClusterId="k8s",
                 locustfile="deployed.py")
    )
    store.clusters.collection.insert_one(
        {"id": "k8s", "baseUrl": BASE, "auth": {"type": "none"}}
    )
    return store


def recorded(store: Store, **options: Any) -> Any:
    plan = plan_run(store, "api", RunOptions(**options), "ann")
    plan.run.collector = {"interval": 0.1}  # with RENEW_MIN_SEC 0: renew at each busy poll
    assert take_lease(store, plan)
    return record_pending(store, plan)


def test_wait_budget_comes_from_if_busy_and_wait_timeout(store: Store) -> None:
    assert busy_wait_sec(recorded(store)) == 0.0  # --if-busy fail (the default)
    store.leases.collection.delete_many({})
    run = recorded(store, if_busy="wait", wait_timeout=600.0)
    assert 590 < busy_wait_sec(run) <= 600
    assert busy_wait_sec(run, now=utcnow() + timedelta(hours=1)) == 0.0


def test_start_run_swarm_waits_holding_lease_and_heartbeat(
    store: Store, mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(swarm_start, "RENEW_MIN_SEC", 0.0)
    run = recorded(store, if_busy="wait", wait_timeout=600.0)
    before = store.leases.holder(lease_id("k8s"))
    busy_then_swarming(mock, 4, "running", 5)
    said: list[str] = []
    started = start_run_swarm(
        store, run, LocustClient(BASE), start_timeout=5, worker_wait_sec=0, notify=said.append
    )
    assert started.payload["state"] == "running"
    assert len(said) == 1 and "busy with a test this run did not start" in said[0]
    after = store.leases.holder(lease_id("k8s"))
    assert before is not None and after is not None
    assert after["runId"] == run.id and after["expiresAt"] >= before["expiresAt"]
    assert store.runs.find_by_id(run.id).heartbeatAt is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("why", ["lease", "stop", "interrupt"])
def test_start_run_swarm_gives_up_waiting_and_stops_nothing(
    store: Store, mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    monkeypatch.setattr(swarm_start, "RENEW_MIN_SEC", 0.0)
    run = recorded(store, if_busy="wait", wait_timeout=600.0)
    mock.get(f"{BASE}/stats/requests", json=stats_payload("running", users=50))
    stop = mock.post(f"{BASE}/stop", json=STOPPED)
    event = threading.Event()
    if why == "lease":
        store.leases.collection.update_one({"_id": lease_id("k8s")}, {"$set": {"runId": "other"}})
    elif why == "stop":
        store.runs.update(run.id, {"stopRequested": True})
    else:
        event.set()
    expected = Interrupted if why == "interrupt" else ClusterBusy
    client = LocustClient(BASE)
    with pytest.raises(expected):
        start_run_swarm(
            store, run, client, start_timeout=5, worker_wait_sec=0, stop_event=event
        )
    client.stop()
    assert stop.call_count == 0
