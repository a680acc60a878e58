"""Schedules on the real wire server and real Locust: exactly-once ticks, missed slots,
busy clusters, and a schedule that pauses itself after failing runs."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from loadmgr.locust.client import LocustClient
from loadmgr.models import Scope
from loadmgr.models.schedules import Schedule, ScheduleSlot, SlotOutcome
from loadmgr.store import Store
from loadmgr.store.embedded import free_port
from tests.conftest import loadmgr_command, ok
from tests.integration.test_runs import create_test
from tests.locust_servers import DEMO_LOCUSTFILE
from tests.polling import wait_for
from tests.unit.test_schedules import refused_delete

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("tick_local")]

IMPOSSIBLE = "rps>=1000000"


def add_schedule(cli: Any, test: str, cron: str, *extra: str) -> dict[str, Any]:
    result = ok(cli("schedules", "add", test, "--cron", cron, *extra, "-o", "json"))
    return result.json()  # type: ignore[no-any-return]


def next_slot(cli: Any, schedule: str) -> datetime:
    shown = ok(cli("schedules", "show", schedule, "-o", "json")).json()
    return datetime.fromisoformat(shown["nextSlotAt"].replace("Z", "+00:00"))


def stamp(moment: datetime) -> str:
    return moment.isoformat()


def tick(cli: Any, now: datetime) -> list[dict[str, Any]]:
    return ok(cli("schedules", "tick", "--now", stamp(now), "-o", "json")).json()  # type: ignore[no-any-return]


def history(cli: Any, schedule: str) -> list[dict[str, Any]]:
    return ok(cli("schedules", "history", schedule, "-o", "json")).json()  # type: ignore[no-any-return]


def wait_ended(mongo_db: Any, run_id: str, timeout: float = 120) -> dict[str, Any]:
    def ended() -> Any:
        run = mongo_db.load_test_runs.find_one({"id": run_id})
        return run if run and run["status"] in ("Finished", "Failed") else None

    assert wait_for(ended, timeout=timeout, interval=0.5), f"run {run_id} did not end"
    run = ended()
    # The slot's verdict comes right after the end is stored, the lease's release after it.
    assert wait_for(lambda: _slot_settled(mongo_db, run), timeout=10)
    assert wait_for(lambda: not mongo_db.cluster_leases.find_one({"runId": run_id}), timeout=30)
    return run  # type: ignore[no-any-return]


def _slot_settled(mongo_db: Any, run: dict[str, Any]) -> bool:
    trigger = run.get("trigger") or {}
    if "schedule" not in trigger:
        return True
    slot = mongo_db.schedule_slots.find_one({"runId": run["id"]})
    return slot is not None and slot["verdict"] == run["verdict"]


def failures_in_a_row(mongo_db: Any, schedule_id: str, count: int) -> dict[str, Any]:
    """The schedule once its count is `count` (the count follows the slot's verdict)."""

    def counted() -> Any:
        stored = mongo_db.schedules.find_one({"id": schedule_id})
        return stored if stored["consecutiveFailures"] == count else None

    assert wait_for(counted, timeout=10), mongo_db.schedules.find_one({"id": schedule_id})
    return counted()  # type: ignore[no-any-return]


def test_four_ticks_at_once_start_one_real_run(cli, mongo_db, target_server):
    # A run this short proves what a 5-s one does: one start, recorded, by a real Locust.
    create_test(cli, target_server.url, "nightly-demo", "--duration", "2s")
    schedule = add_schedule(cli, "nightly-demo", "* * * * *", "--name", "nightly", "--workers", "0")
    slot = next_slot(cli, "nightly")
    now = slot + timedelta(seconds=5)
    processes = [
        subprocess.Popen(
            [*loadmgr_command(), "schedules", "tick", "--now", stamp(now), "-o", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    handled = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        handled.extend(json.loads(stdout))
    assert [s["outcome"] for s in handled] == ["started"]
    runs = list(mongo_db.load_test_runs.find({"trigger.schedule": schedule["id"]}))
    assert len(runs) == 1
    run = runs[0]
    assert run["id"] == handled[0]["runId"]
    assert run["trigger"] == {"schedule": schedule["id"], "slot": slot}
    assert run["createdBy"] == "schedule:nightly"
    # A second tick in the same minute starts nothing.
    assert tick(cli, now + timedelta(seconds=30)) == []
    assert mongo_db.load_test_runs.count_documents({}) == 1
    ended = wait_ended(mongo_db, run["id"])
    assert ended["status"] == "Finished"
    assert ended["finalStats"]["totals"]["requests"] > 0  # a real Locust ran it
    slots = history(cli, "nightly")
    assert [(s["outcome"], s["runId"]) for s in slots] == [("started", run["id"])]
    shown = ok(cli("schedules", "show", "nightly", "-o", "json")).json()
    assert shown["lastOutcome"] == "started" and shown["lastRunId"] == run["id"]
    assert shown["consecutiveFailures"] == 0
    assert datetime.fromisoformat(shown["nextSlotAt"].replace("Z", "+00:00")) == slot + timedelta(
        minutes=1
    )
    # A hand-started run records its user as trigger.
    manual = ok(cli("runs", "start", "nightly-demo", "--workers", "0", "-o", "json")).json()
    assert manual["trigger"] == {"user": "tester"}


def dead_cluster(cli: Any) -> str:
    ok(cli("clusters", "add", "dead", "--url", f"http://127.0.0.1:{free_port()}"))
    return "dead"


def test_missed_slot_within_grace_starts_once_beyond_grace_is_missed(cli, mongo_db, target_server):
    create_test(cli, target_server.url, "hourly-demo")
    add_schedule(cli, "hourly-demo", "0 * * * *", "--cluster", dead_cluster(cli))
    first = next_slot(cli, "hourly-demo")
    # No tick ran at `first` nor at the next slot; 5 minutes after that one, the newest
    # slot is started (within the 15 min grace) and the older one recorded missed.
    handled = tick(cli, first + timedelta(hours=1, minutes=5))
    assert [(s["slot"][:16], s["outcome"]) for s in handled] == [
        (f"{first:%Y-%m-%dT%H:%M}", "missed"),
        (f"{first + timedelta(hours=1):%Y-%m-%dT%H:%M}", "started"),
    ]
    assert tick(cli, first + timedelta(hours=1, minutes=6)) == []
    assert mongo_db.load_test_runs.count_documents({}) == 1
    # Beyond the grace, the slot is missed and nothing starts.
    late = tick(cli, first + timedelta(hours=2, minutes=20))
    assert [s["outcome"] for s in late] == ["missed"]
    assert mongo_db.load_test_runs.count_documents({}) == 1
    outcomes = [s["outcome"] for s in history(cli, "hourly-demo")]
    assert outcomes == ["missed", "started", "missed"]
    run = mongo_db.load_test_runs.find_one({})
    wait_ended(mongo_db, run["id"])  # its collector fails to reach the cluster, and ends


def test_busy_cluster_records_a_skip(cli, mongo_db, target_server):
    create_test(cli, target_server.url, "busy-demo")
    schedule = add_schedule(cli, "busy-demo", "* * * * *", "--workers", "0")
    result = cli(
        "runs",
        "start",
        "busy-demo",
        "--detach",
        "--duration",
        "60s",
        "--workers",
        "0",
        "-o",
        "json",
    )
    manual = ok(result).json()
    try:
        handled = tick(cli, next_slot(cli, "busy-demo") + timedelta(seconds=1))
        assert [s["outcome"] for s in handled] == ["skipped"]
        assert manual["id"] in handled[0]["reason"]
        assert handled[0]["runId"] is None
        assert mongo_db.load_test_runs.count_documents({}) == 1
        shown = mongo_db.schedules.find_one({"id": schedule["id"]})
        assert shown["lastOutcome"] == "skipped"
        assert shown["consecutiveFailures"] == 0  # a skip is not a failure
    finally:
        ok(cli("runs", "stop", manual["id"]))
    wait_ended(mongo_db, manual["id"])


def test_three_failing_runs_in_a_row_pause_the_schedule(cli, mongo_db, target_server):
    create_test(cli, target_server.url, "failing-demo", "--duration", "2s")  # judged, not timed
    schedule = add_schedule(
        cli, "failing-demo", "* * * * *", "--workers", "0", "--threshold", IMPOSSIBLE
    )
    for number in range(1, 4):
        handled = tick(cli, next_slot(cli, "failing-demo") + timedelta(seconds=1))
        assert [s["outcome"] for s in handled] == ["started"], handled
        run = wait_ended(mongo_db, handled[0]["runId"])
        assert run["verdict"] == "failed", (run.get("error"), run.get("verdictReasons"))
        stored = failures_in_a_row(mongo_db, schedule["id"], number)
        if number == 2:
            # A failing run started by hand does not count.
            result = cli(
                "runs", "start", "failing-demo", "--workers", "0", "--threshold", IMPOSSIBLE
            )
            assert result.exit_code == 1
            stored = mongo_db.schedules.find_one({"id": schedule["id"]})
            assert stored["consecutiveFailures"] == 2 and not stored["paused"]
    assert wait_for(lambda: mongo_db.schedules.find_one({"id": schedule["id"]})["paused"])
    stored = mongo_db.schedules.find_one({"id": schedule["id"]})
    assert "3 failures in a row" in stored["pausedReason"]
    assert [s["verdict"] for s in history(cli, "failing-demo")] == ["failed"] * 3
    # Paused: no more slots are started.
    assert tick(cli, next_slot(cli, "failing-demo") + timedelta(minutes=5)) == []
    listed = ok(cli("schedules", "list", "-o", "json")).json()
    assert listed[0]["paused"] is True
    resumed = ok(cli("schedules", "resume", "failing-demo", "-o", "json")).json()
    assert resumed["paused"] is False and resumed["consecutiveFailures"] == 0


def test_locust_busy_with_someone_elses_test_records_a_skip(
    cli, mongo_db, locust_standalone, target_server
):
    cluster = locust_standalone(DEMO_LOCUSTFILE)
    theirs = LocustClient(cluster.base_url)  # another tool's swarm: no loadmgr lease
    theirs.swarm(3, 10, target_server.url, 60)
    try:
        assert wait_for(lambda: theirs.stats()["state"] == "running", timeout=30)
        ok(cli("clusters", "add", "shared", "--url", cluster.base_url))
        create_test(cli, target_server.url, "remote-demo", "--cluster", "shared")
        add_schedule(cli, "remote-demo", "* * * * *")
        handled = tick(cli, next_slot(cli, "remote-demo") + timedelta(seconds=1))
        assert [s["outcome"] for s in handled] == ["skipped"]
        assert "already running a test loadmgr did not start" in handled[0]["reason"]
        assert mongo_db.load_test_runs.count_documents({}) == 0  # no Failed run behind
        assert theirs.stats()["user_count"] == 3  # and their test left alone
    finally:
        theirs.close()


def test_deleting_a_test_with_schedules_needs_force_which_removes_them(cli, mongo_db):
    create_test(cli, "http://127.0.0.1:1", "doomed")
    create_test(cli, "http://127.0.0.1:1", "spared")
    doomed = add_schedule(cli, "doomed", "0 3 * * *", "--name", "doomed-nightly")
    spared = add_schedule(cli, "spared", "0 3 * * *")
    # A day and an hour after the first slot, a tick records both slots of each missed.
    tick(cli, next_slot(cli, "doomed-nightly") + timedelta(days=1, hours=1))
    assert mongo_db.schedule_slots.count_documents({"scheduleId": doomed["id"]}) == 2
    refused = refused_delete(cli, mongo_db, "doomed")
    assert refused[0] == "error: test 'doomed' has 1 schedule(s): 'doomed-nightly'"
    assert refused[1].startswith("hint: loadmgr schedules remove doomed-nightly ")

    deleted = ok(cli("tests", "delete", "doomed", "--yes", "--force"))
    assert "with 1 schedule(s)" in deleted.stderr
    assert mongo_db.load_tests.count_documents({"name": "doomed"}) == 0
    assert [s["id"] for s in mongo_db.schedules.find()] == [spared["id"]]
    assert {s["scheduleId"] for s in mongo_db.schedule_slots.find()} == {spared["id"]}


def test_the_wire_server_arbitrates_claims_and_slot_records(mongo_uri):
    """What exactly-once rests on, raced harder than processes can: eight threads claim the
    same slot at once (one compare-and-set wins), and a slot is recorded once."""
    store = Store.connect(mongo_uri, os.environ["LOADMGR_DATABASE"], Scope(), 5000)
    try:
        store.ensure_schedule_indexes()
        first = datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)
        schedule = store.schedules.insert(
            Schedule(name="raced", loadTestId="t", cron="0 3 * * *", nextSlotAt=first)
        )
        barrier = threading.Barrier(8)
        wins: list[bool] = []

        def claim() -> None:
            barrier.wait()
            changes = {"nextSlotAt": schedule.nextSlotAt + timedelta(days=1)}
            wins.append(store.schedules.claim(schedule.id, schedule.nextSlotAt, changes))

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(wins) == [False] * 7 + [True]
        slot = ScheduleSlot(scheduleId=schedule.id, slot=first, outcome=SlotOutcome.STARTING)
        assert store.schedule_slots.record(slot) is True
        again = slot.model_copy(update={"id": "another"})
        assert store.schedule_slots.record(again) is False
        assert store.schedule_slots.record_many([again]) == 0
    finally:
        store.close()
