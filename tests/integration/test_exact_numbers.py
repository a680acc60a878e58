"""Recorded intervals are the truth (issue 9): with the loadmgr plugin on a real master with
two workers, every interval matches what the target itself counted, a latency step shows in
the first window after it, and the intervals add up to Locust's own total."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.conftest import ok
from tests.exact_target import exact_target, write_locustfile
from tests.polling import wait_for

pytestmark = pytest.mark.integration


def _create(cli: Any, cluster_url: str, target_url: str, name: str = "exact") -> None:
    assert cli("clusters", "add", "remote", "--url", cluster_url).exit_code == 0
    result = cli(
        "tests", "create", "--name", name, "--target-url", target_url, "--cluster", "remote",
        "--users", "10", "--spawn-rate", "10", "--duration", "30s",
    )
    assert result.exit_code == 0, result.stderr


def _intervals(mongo_db: Any) -> list[dict[str, Any]]:
    return list(mongo_db.metrics_timeseries.find({}, {"_id": False}).sort("seq", 1))


def test_every_interval_matches_the_target_and_adds_up(
    cli, mongo_db, tmp_path, locust_master_with_workers
):
    with exact_target() as target:
        cluster = locust_master_with_workers(write_locustfile(tmp_path), workers=2)
        _create(cli, cluster.base_url, target.url)
        # 16 s: six whole 2-s windows between the ramp-up and the end, each checked.
        result = cli("runs", "start", "exact", "--interval", "2", "--duration", "16s",
                     "-o", "json")
        assert result.exit_code == 0, result.stderr
        run = result.json()
        assert run["collectionMode"] == "plugin"
        intervals = _intervals(mongo_db)
        assert len(intervals) >= 7
        assert all(i["percentileWindow"] == "interval" for i in intervals)
        # Whole windows only (the first holds the ramp-up, the last may be partial).
        for interval in intervals[1:-1]:
            start = interval["windowStart"].timestamp()
            end = interval["windowEnd"].timestamp()
            assert end - start == 2 == interval["intervalSec"]
            truth = target.hits_between(start, end)
            assert truth > 0
            assert abs(interval["intervalRequests"] - truth) <= max(2, 0.05 * truth), (
                interval["seq"], interval["intervalRequests"], truth
            )
        total = run["finalStats"]["totals"]["requests"]
        assert sum(i["intervalRequests"] for i in intervals) == total
        assert intervals[-1]["totalRequests"] == total
        # No aliasing zigzag: each interval's RPS is the target's own rate for its window
        # (checked above), so a load that holds steady draws a flat line.


def test_a_latency_step_shows_in_the_first_window_after_it(
    cli, mongo_db, tmp_path, locust_standalone
):
    with exact_target() as target:
        target.delay = 0.01
        cluster = locust_standalone(write_locustfile(tmp_path))
        _create(cli, cluster.base_url, target.url, "step")
        stepped: list[float] = []

        def step_when_running() -> None:
            wait_for(lambda: mongo_db.metrics_timeseries.count_documents({}) >= 4, timeout=60)
            stepped.append(time.time())
            target.delay = 0.1

        helper = threading.Thread(target=step_when_running, daemon=True)
        helper.start()
        result = cli("runs", "start", "step", "--interval", "1", "--duration", "12s")
        helper.join(timeout=5)
        assert result.exit_code == 0, result.stderr
        assert stepped, "the latency never stepped"
        step = stepped[0]
        intervals = [i for i in _intervals(mongo_db) if i["intervalRequests"]]
        before = [i for i in intervals if i["windowEnd"].timestamp() <= step]
        after = [i for i in intervals if i["windowStart"].timestamp() >= step + 0.2]
        # The run's first second holds its users' start (threads, connections), which on a
        # busy machine can take longer than the target's delay: the steady part is after it.
        steady = before[1:]
        assert steady and after
        assert all(i["p50ResponseMs"] <= 60 for i in steady), [i["p50ResponseMs"] for i in before]
        assert after[0]["p50ResponseMs"] >= 90, after[0]
        # Percentiles over a part of the run are exact too: the part after the step.
        offset = int(step - intervals[0]["windowStart"].timestamp()) + 1
        run_id = mongo_db.load_test_runs.find_one({})["id"]
        shown = cli("metrics", "show", run_id, "--from", f"{offset}s", "-o", "json")
        assert shown.exit_code == 0, shown.stderr
        window = shown.json()
        assert window["source"] == "window" and window["exactPercentiles"] is True
        assert window["p50ResponseMs"] >= 90


def test_a_paused_collector_is_fenced_off_and_nothing_is_missing(
    cli, mongo_db, tmp_path, locust_master_with_workers, monkeypatch
):
    """SIGSTOP the collector: `runs follow` takes over and fills the missed seconds; the
    paused one, resumed with seconds it missed after the take-over, writes nothing more and
    exits by itself. The duration only bounds all that: once it exited, the run is stopped."""
    import os
    import signal
    import subprocess

    from tests.conftest import loadmgr_command
    from tests.locust_servers import pid_alive

    monkeypatch.setenv("LOADMGR_STALE_AFTER_SEC", "2")
    with exact_target() as target:
        cluster = locust_master_with_workers(write_locustfile(tmp_path), workers=2)
        _create(cli, cluster.base_url, target.url, "paused")
        started = cli("runs", "start", "paused", "--detach", "--duration", "30s",
                      "--interval", "1", "-o", "json")
        assert started.exit_code == 0, started.stderr
        run_id = started.json()["id"]
        runs = mongo_db.load_test_runs
        old = runs.find_one({"id": run_id})["collector"]["pid"]
        assert wait_for(lambda: mongo_db.metrics_timeseries.count_documents({}) >= 2, 30)
        os.kill(old, signal.SIGSTOP)
        paused_at = time.monotonic()
        try:
            follower = subprocess.Popen(
                [*loadmgr_command(), "runs", "follow", run_id, "-o", "json"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            assert wait_for(lambda: runs.find_one({"id": run_id})["collectorEpoch"] == 2, 30)
            claimed, claimed_at = time.time(), time.monotonic()
            # Paused past the claim by two intervals, and twice the staleness (6 s) in all:
            # it wakes with seconds of the new collector's to write, and the run still going.
            assert wait_for(
                lambda: time.monotonic() - max(paused_at + 4, claimed_at) >= 2, 25
            )
        finally:
            os.kill(old, signal.SIGCONT)
        assert wait_for(lambda: not pid_alive(old), 60), "the fenced collector did not exit"
        assert follower.poll() is None, "the run ended before the paused collector woke"
        ok(cli("runs", "stop", run_id))
        out, err = follower.communicate(timeout=120)
        assert follower.returncode == 7, err.decode()  # stopped before its duration
        intervals = list(mongo_db.metrics_timeseries.find({"loadTestRunId": run_id}))
        late = [
            i["seq"] for i in intervals
            if i["metadata"].get("epoch") == 1 and i["windowStart"].timestamp() >= claimed
        ]
        assert not late, f"the fenced collector wrote intervals {late}"
        final = runs.find_one({"id": run_id})
        assert final["status"] == "Finished" and final["stopReason"] == "user"
        total = final["finalStats"]["totals"]["requests"]
        assert sum(i["intervalRequests"] for i in intervals) == total
        assert sorted(i["seq"] for i in intervals) == list(range(1, len(intervals) + 1))


def test_without_the_plugin_a_take_over_writes_one_gap_and_the_sums_hold(
    cli, mongo_db, tmp_path, locust_master_with_workers
):
    """A cluster that lacks the plugin: intervals are rolling-percentile deltas; after a
    killed collector, the one that takes over covers the unwatched time with a gap."""
    import os
    import signal

    with exact_target() as target:
        cluster = locust_master_with_workers(
            write_locustfile(tmp_path), workers=2, with_plugin=False
        )
        _create(cli, cluster.base_url, target.url, "noplugin")
        started = cli("runs", "start", "noplugin", "--detach", "--duration", "10s",
                      "--interval", "2", "-o", "json")
        assert started.exit_code == 0, started.stderr
        run_id = started.json()["id"]
        runs = mongo_db.load_test_runs
        assert wait_for(lambda: mongo_db.metrics_timeseries.count_documents({}) >= 2, 30)
        os.kill(runs.find_one({"id": run_id})["collector"]["pid"], signal.SIGKILL)
        followed = cli("runs", "follow", run_id, "-o", "json")
        assert followed.exit_code == 0, followed.stderr
        run = followed.json()
    assert run["collectionMode"] == "stats"
    intervals = list(mongo_db.metrics_timeseries.find({"loadTestRunId": run_id}).sort("seq", 1))
    assert all(i["percentileWindow"] == "rolling" for i in intervals)
    assert sum(1 for i in intervals if i.get("gap")) == 1
    total = run["finalStats"]["totals"]["requests"]
    assert sum(i["intervalRequests"] for i in intervals) == total
    assert [i["seq"] for i in intervals] == list(range(1, len(intervals) + 1))


def test_a_killed_local_master_takes_its_workers_with_it(cli, mongo_db, tmp_path, isolated_env):
    """The `local` cluster's master SIGKILLed mid-run: every process stops at once, no
    request reaches the target more than 3 s later, the run is recorded as lost."""
    import os
    import signal

    from tests.integration.test_runs import local_locust_pids

    with exact_target() as target:
        locustfile = write_locustfile(tmp_path)
        result = cli(
            "tests", "create", "--name", "frail", "--target-url", target.url, "--locustfile",
            str(locustfile), "--users", "10", "--spawn-rate", "10", "--duration", "60s",
        )
        assert result.exit_code == 0, result.stderr
        started = cli("runs", "start", "frail", "--detach", "--workers", "2", "-o", "json")
        assert started.exit_code == 0, started.stderr
        run_id = started.json()["id"]
        assert wait_for(lambda: target.total() > 50, 30)
        master = min(local_locust_pids(isolated_env))  # started first
        os.kill(master, signal.SIGKILL)
        killed_at = time.time()
        runs = mongo_db.load_test_runs
        assert wait_for(lambda: runs.find_one({"id": run_id})["status"] == "Failed", 30)
        assert wait_for(lambda: not local_locust_pids(isolated_env), 15)
        assert not target.last_hit_after(killed_at + 3), "load went on after the master died"
    run = runs.find_one({"id": run_id})
    assert run["stopReason"] == "lost" and run["verdict"] == "error"
    assert mongo_db.cluster_leases.find_one({"runId": run_id}) is None


def test_a_warm_up_is_left_out_of_thresholds_and_comparisons(
    cli, mongo_db, tmp_path, locust_standalone
):
    """Slow for the first seconds, then fast: `p95<50ms` fails on the whole run, passes
    once the warm-up is left out (judged on the exact window after it). The two runs load
    at once, each its own test on its own target and Locust (the runs are what differ)."""
    from tests.concurrent_runs import run_at_once

    with exact_target() as cold_target, exact_target() as warm_target:
        targets = {False: cold_target, True: warm_target}
        names = {False: "cold", True: "warm"}
        locustfile = write_locustfile(tmp_path)
        for warm, target in targets.items():
            target.delay = 0.1
            cluster = locust_standalone(locustfile)
            add = cli("clusters", "add", names[warm], "--url", cluster.base_url)
            assert add.exit_code == 0, add.stderr
            created = cli(
                "tests", "create", "--name", names[warm], "--target-url", target.url,
                "--cluster", names[warm], "--users", "10", "--spawn-rate", "10",
                "--duration", "30s",
            )  # fmt: skip
            assert created.exit_code == 0, created.stderr

        def speed_up(warm: bool) -> None:
            test_id = mongo_db.load_tests.find_one({"name": names[warm]})["id"]

            def three_intervals() -> bool:
                run = mongo_db.load_test_runs.find_one({"loadTestId": test_id})
                found = {"loadTestRunId": run["id"]} if run else None
                return bool(found) and mongo_db.metrics_timeseries.count_documents(found) >= 3

            wait_for(three_intervals, 60)
            targets[warm].delay = 0.0

        helpers = [threading.Thread(target=speed_up, args=(w,), daemon=True) for w in targets]
        for helper in helpers:
            helper.start()
        ended = run_at_once(
            {
                names[warm]: [
                    "runs", "start", names[warm], "--interval", "1", "--duration", "10s",
                    "--threshold", "p95<50ms", *(["--warmup", "6s"] if warm else []),
                    "-o", "json",
                ]
                for warm in targets
            },  # fmt: skip
            tmp_path / "runs",
        )
        for helper in helpers:
            helper.join(timeout=5)
        runs: dict[bool, dict[str, Any]] = {}
        for warm in targets:
            result = ended[names[warm]]
            assert result.exit_code == (0 if warm else 1), result.stderr
            runs[warm] = result.json()
    cold, warm_run = runs[False], runs[True]
    assert cold["verdict"] == "failed" and warm_run["verdict"] == "passed"
    judged = warm_run["judgedStats"]
    assert judged["exact"] and judged["window"]["fromSec"] >= 6
    assert judged["totals"]["p95ResponseMs"] < 50 <= warm_run["finalStats"]["totals"][
        "p95ResponseMs"]
    compared = cli("metrics", "compare", cold["id"], warm_run["id"], "-o", "json")
    assert compared.exit_code in (0, 1), compared.stderr
