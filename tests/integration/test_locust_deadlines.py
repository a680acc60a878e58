"""A Locust that answers one byte every second (issue 21, item 2): each read is within
its timeout, the whole answer never comes. It counts as no answer toward --lost-timeout,
and a signal during such a request ends the command within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from contextlib import ExitStack

import pytest

from tests.concurrent_runs import each_at_once
from tests.conftest import loadmgr_command, reaped
from tests.fake_locust import FakeLocust, fake_locust
from tests.locust_servers import pid_alive
from tests.polling import wait_for

pytestmark = pytest.mark.integration


def _define(cli, fake: FakeLocust, name: str = "demo") -> None:
    """Cluster `name` at `fake`, and test `name` on it."""
    assert cli("clusters", "add", name, "--url", fake.url).exit_code == 0
    created = cli(
        "tests", "create", "--name", name, "--target-url", "http://127.0.0.1:9/",
        "--cluster", name, "--duration", "120s", "-q",
    )
    assert created.exit_code == 0, created.stderr


def _drip_once_running(fake: FakeLocust) -> threading.Thread:
    """From the third poll of a running test on, every answer drips a byte a second."""

    def start() -> None:
        if wait_for(lambda: fake.requests >= 30, timeout=60):
            fake.drip = 1.0

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    return thread


def _loadmgr(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*loadmgr_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _run_of(mongo_db, name: str) -> dict:
    test = mongo_db.load_tests.find_one({"name": name})
    return mongo_db.load_test_runs.find_one({"loadTestId": test["id"]})


def test_dripping_and_slow_locusts_end_within_their_bounds(cli, mongo_db):
    """Each case waits on deadlines of its own (the lost-timeout, a request's, /stop's, a
    slow poll's), not on the machine: all run at once, each its own fake, cluster, test
    and processes (the in-process `cli` only defines them), each checked by name."""
    with ExitStack() as fakes:
        dripping = {
            case: fakes.enter_context(fake_locust())
            for case in ("lost", "signal", "runs-stop")
        }
        slow = fakes.enter_context(fake_locust(plugin=True))
        for case, fake in (*dripping.items(), ("slow", slow)):
            _define(cli, fake, case)
        each_at_once(
            {
                "lost": lambda: _a_dripping_locust_is_lost_within_the_lost_timeout(
                    mongo_db, dripping["lost"]
                ),
                "signal": lambda: _a_signal_during_a_dripping_answer_ends_runs_start_quickly(
                    mongo_db, dripping["signal"]
                ),
                "runs-stop": lambda: _runs_stop_of_a_run_whose_locust_drips_ends_in_bounds(
                    mongo_db, dripping["runs-stop"]
                ),
                "slow": lambda: _a_slow_locust_within_every_deadline_beats_on(mongo_db, slow),
            }
        )


def _a_dripping_locust_is_lost_within_the_lost_timeout(mongo_db, fake: FakeLocust) -> None:
    _drip_once_running(fake)
    started = time.monotonic()
    process = _loadmgr("runs", "start", "lost", "--interval", "1", "--lost-timeout", "5s")
    with reaped(process):
        _, stderr = process.communicate(timeout=120)
    elapsed = time.monotonic() - started
    assert process.returncode == 6, stderr
    # The lost-timeout, one stats request's deadline (10 s) and one /stop's (10 s).
    assert elapsed < 45, elapsed
    run = _run_of(mongo_db, "lost")
    assert run["status"] == "Failed" and run["stopReason"] == "lost", run
    assert "did not answer GET /stats/requests" in run["error"]
    assert any(d.startswith("POST /stop") for d in fake.dripped), fake.dripped


def _a_signal_during_a_dripping_answer_ends_runs_start_quickly(mongo_db, fake) -> None:
    _drip_once_running(fake)
    process = _loadmgr("runs", "start", "signal", "--interval", "1", "--lost-timeout", "600s")
    with reaped(process):
        assert wait_for(lambda: fake.dripped, timeout=60), "Locust never dripped"
        signalled = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        elapsed = time.monotonic() - signalled
    assert process.returncode == 130, stderr
    assert elapsed < 10, elapsed  # the poll given up at once, /stop given 5 s, no more
    run = _run_of(mongo_db, "signal")
    assert run["stopReason"] == "user" and run["status"] not in ("Running", "Pending"), run


def _runs_stop_of_a_run_whose_locust_drips_ends_in_bounds(mongo_db, fake) -> None:
    """`runs stop` gives /stop 15 s for its whole answer, then waits for the collector,
    whose own polls are given up at their deadlines: the command and the run both end."""
    detach = _loadmgr(
        "runs", "start", "runs-stop", "--detach", "--interval", "1", "--lost-timeout", "600s",
        "-q",
    )  # fmt: skip
    with reaped(detach):
        stdout, stderr = detach.communicate(timeout=120)
    assert detach.returncode == 0, stderr
    run_id = stdout.strip()
    assert wait_for(
        lambda: mongo_db.load_test_runs.find_one({"id": run_id})["status"] == "Running",
        timeout=60,
    )
    fake.drip = 1.0
    assert wait_for(lambda: fake.dripped, timeout=30), "Locust never dripped"
    before = time.monotonic()
    stop = _loadmgr("runs", "stop", run_id)
    with reaped(stop):
        _, stderr = stop.communicate(timeout=120)
    elapsed = time.monotonic() - before
    assert wait_for(
        lambda: mongo_db.load_test_runs.find_one({"id": run_id})["status"]
        in ("Finished", "Failed"),
        timeout=60,
    )
    assert stop.returncode in (0, 6), stderr
    # /stop's 15 s, then the collector's end: its last polls each given up at 10 s.
    assert elapsed < 90, elapsed
    run = mongo_db.load_test_runs.find_one({"id": run_id})
    assert run["stopReason"] in ("user", "lost"), run
    # Nothing left behind: the detached collector ends too (fenced off, or by itself).
    pid = run["collector"]["pid"]
    if not wait_for(lambda: not pid_alive(pid), timeout=30):
        os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"the run's collector (pid {pid}) outlived its run")


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_locust_has_not_started_the_test_ends_the_command_at_once(
    cli, mongo_db, sent
):
    """`/swarm` answered, the state never `running`: the 60 s wait for the start heard no
    signal before (the command ended 55 s after it, exit 6). Now: exit 130 within seconds,
    the swarm stopped, the run recorded as stopped by its user."""
    with fake_locust() as fake:
        fake.never_starts = True
        _define(cli, fake)
        process = subprocess.Popen(
            [*loadmgr_command(), "runs", "start", "demo", "--interval", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        with reaped(process):
            assert wait_for(lambda: fake.swarms >= 1, timeout=60), "never swarmed"
            signalled = time.monotonic()
            process.send_signal(sent)
            process.wait(timeout=60)
            elapsed = time.monotonic() - signalled
        stops = fake.stops
    assert process.returncode == 130, process.stderr.read() if process.stderr else ""
    assert elapsed < 10, elapsed
    assert stops >= 1  # our own swarm, stopped
    run = mongo_db.load_test_runs.find_one({})
    assert run["status"] == "Failed" and run["stopReason"] == "user", run


def _a_slow_locust_within_every_deadline_beats_on(mongo_db, fake: FakeLocust) -> None:
    """Values just under each bound, combined: every answer 4 s late (within its 10-s
    deadline), and the plugin saying `more` so that a poll asks six times. A poll took
    half a minute without a heartbeat, past the 15 s after which another host takes the
    collector for dead (and `runs follow` takes the run over) and near the lease's 30 s.
    The collector beats before any request once a beat is due."""
    fake.plugin_lie = lambda answer: {**answer, "more": True}
    test_id = mongo_db.load_tests.find_one({"name": "slow"})["id"]
    beats: list[float] = []
    done = threading.Event()

    def watch() -> None:
        seen = None
        while not done.wait(0.2):
            run = mongo_db.load_test_runs.find_one({"loadTestId": test_id}) or {}
            if run.get("status") == "Running" and run.get("heartbeatAt") != seen:
                seen = run.get("heartbeatAt")
                beats.append(time.monotonic())

    def slow_down() -> None:
        if wait_for(lambda: fake.requests >= 1 or fake.swarms >= 1, timeout=60):
            time.sleep(2)
            fake.answer_delay = 4.0

    watcher = threading.Thread(target=watch, daemon=True)
    slower = threading.Thread(target=slow_down, daemon=True)
    watcher.start()
    slower.start()
    process = _loadmgr("runs", "start", "slow", "--interval", "1")
    with reaped(process):
        # Longer than one poll of six slow asks (24 s): a silent poll would show.
        wait_for(lambda: len(beats) >= 2 and time.monotonic() - beats[1] > 27, timeout=90)
        # The time since the last beat counts too: a poll still silent is a gap.
        silent = time.monotonic() - beats[-1] if beats else float("inf")
        fake.answer_delay = 0.0  # what is measured is done: end the run quickly
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    done.set()
    watcher.join(timeout=5)
    gaps = [later - earlier for earlier, later in zip(beats, beats[1:], strict=False)]
    assert gaps and max([*gaps, silent]) < 12, (gaps, silent)
