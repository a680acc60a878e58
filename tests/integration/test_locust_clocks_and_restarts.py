"""A Locust whose plugin answers lie about time, whose workers' clocks run ahead, or whose
master restarts mid-run (issue 21, items 1 and 5), against a fake master with the plugin's
routes: the run ends recorded, with the right words, its load stopped, its intervals never
dated after the run, and a restarted master's numbers never taken for the run's."""

from __future__ import annotations

import re
from contextlib import ExitStack
from datetime import timezone
from functools import partial
from typing import Any

import pytest

from tests.concurrent_runs import check_each, run_at_once
from tests.fake_locust import FakeLocust, fake_locust

pytestmark = pytest.mark.integration


def _create(
    cli: Any, fake: FakeLocust, duration: str = "60s", name: str = "demo", cluster: str = "fake"
) -> None:
    assert cli("clusters", "add", cluster, "--url", fake.url).exit_code == 0
    created = cli(
        "tests", "create", "--name", name, "--target-url", "http://127.0.0.1:9/",
        "--cluster", cluster, "--duration", duration, "--max-duration", "2h", "-o", "json",
    )
    assert created.exit_code == 0, created.stderr


def _start_argv(name: str = "demo") -> tuple[str, ...]:
    return ("runs", "start", name, "--interval", "1", "--lost-timeout", "5s", "-o", "json")


def _start(cli: Any) -> Any:
    return cli(*_start_argv())


def _run_of(mongo_db: Any, name: str) -> dict[str, Any]:
    test = mongo_db.load_tests.find_one({"name": name})
    return mongo_db.load_test_runs.find_one({"loadTestId": test["id"]})


def _intervals(mongo_db: Any, run_id: str) -> list[dict[str, Any]]:
    return list(mongo_db.metrics_timeseries.find({"loadTestRunId": run_id}).sort("seq", 1))


def _utc(value: Any) -> float:
    return float(value.replace(tzinfo=timezone.utc).timestamp())


LIES = {
    # The watermark far ahead: once made 1.8 million empty windows, 12.9 GB of memory.
    "complete +10,000,000 s": lambda a: {**a, "complete": int(a["now"]) + 10_000_000},
    # Near enough to pass the run's bounds: 601 empty windows dated 50 minutes ahead.
    "complete +3000 s": lambda a: {**a, "complete": int(a["now"]) + 3000},
    # The master's clock and its watermark lying together.
    "now and complete +3000 s": lambda a: {
        **a, "now": a["now"] + 3000, "complete": int(a["now"]) + 3000,
    },
    "now 1 hour behind": lambda a: {
        **a, "now": a["now"] - 3600, "complete": int(a["now"]) - 3600, "seconds": [],
    },
}


def test_a_plugin_answer_far_from_the_clock_fails_the_run_as_nonsense(cli, mongo_db, tmp_path):
    """Every lie at once, each its own fake, cluster, test and `runs start` process: each
    waits for its lie and the lost-timeout after it, so they wait together."""
    with ExitStack() as fakes:
        by_lie = {lie: fakes.enter_context(fake_locust(plugin=True)) for lie in LIES}
        commands = {}
        for number, (lie, fake) in enumerate(by_lie.items()):
            fake.plugin_lie = LIES[lie]
            fake.lie_after_swarm_sec = 2.5
            # Long enough for the old bound to let +3000 s in.
            _create(cli, fake, duration="1h", name=f"demo{number}", cluster=f"fake{number}")
            commands[lie] = _start_argv(f"demo{number}")
        ended = run_at_once(commands, tmp_path / "runs")
        stops = {lie: fake.stops for lie, fake in by_lie.items()}

    def check(number: int, lie: str) -> None:
        result = ended[lie]
        assert result.exit_code == 6, result.stderr
        assert "nonsense" in result.stderr, result.stderr
        run = _run_of(mongo_db, f"demo{number}")
        assert run["status"] == "Failed" and run["stopReason"] == "error"
        assert stops[lie] >= 1, "the load was not stopped"
        intervals = _intervals(mongo_db, run["id"])
        # The honest seconds before the lie are kept; nothing of the lie is stored.
        assert intervals and all(i["intervalRequests"] == 5 for i in intervals), intervals
        assert len(intervals) <= result.took + 2
        finished = _utc(run["finishedAt"])
        assert all(_utc(i["windowEnd"]) <= finished for i in intervals)

    check_each({lie: partial(check, number, lie) for number, lie in enumerate(LIES)})


def test_a_test_start_long_before_the_swarm_fails_the_start_and_stops_the_load(cli, mongo_db):
    with fake_locust(plugin=True) as fake:
        fake.plugin_lie = lambda a: {**a, "test_started": a["now"] - 3000}
        _create(cli, fake)
        result = _start(cli)
        assert result.exit_code == 6, result.stderr
        assert "3,000 s before its own clock's now" in result.stderr, result.stderr
        run = mongo_db.load_test_runs.find_one({})
        assert run["status"] == "Failed"
        assert mongo_db.metrics_timeseries.count_documents({}) == 0
        assert fake.stops >= 1, "the swarm of a run that failed to start was left loading"


def test_workers_ahead_of_or_behind_the_master_have_every_request_counted(
    cli, mongo_db, tmp_path
):
    """Workers 40 s ahead of the master and workers 10 s behind it, at once (each its own
    fake and `runs start` process): each 4-s run is counted and its skew recorded."""
    skews = {"ahead": 40, "behind": -10}
    with ExitStack() as fakes:
        by_skew = {skew: fakes.enter_context(fake_locust(plugin=True)) for skew in skews}
        for skew, fake in by_skew.items():
            fake.worker_ahead = skews[skew]
            _create(cli, fake, duration="4s", name=f"demo-{skew}", cluster=f"fake-{skew}")
        ended = run_at_once({skew: _start_argv(f"demo-{skew}") for skew in skews}, tmp_path)
        served = {
            # The seconds of 5 requests each the fake served.
            skew: int(fake.stopped_at) - int(fake.test_started) + 1
            for skew, fake in by_skew.items()
            if fake.stopped_at is not None and fake.test_started is not None
        }

    def finished_run(skew: str) -> dict[str, Any]:
        assert ended[skew].exit_code == 0, ended[skew].stderr
        run = _run_of(mongo_db, f"demo-{skew}")
        assert run["status"] == "Finished", run
        return run

    def ahead() -> None:
        run = finished_run("ahead")
        kinds = [e["kind"] for e in run["events"]]
        assert kinds == ["clock-ahead"], run["events"]
        # `complete` is a whole second and the master's now is not: about 40 s, ±1.
        assert re.search(r"about (39|40|41) s ahead", run["events"][0]["detail"]), run["events"]
        intervals = _intervals(mongo_db, run["id"])
        # The last window ends with the stop's second (as without skew), not 40 s ahead.
        finished = _utc(run["finishedAt"]) + 1
        assert intervals and all(_utc(i["windowEnd"]) <= finished for i in intervals)
        assert sum(i["intervalRequests"] for i in intervals) % 5 == 0
        assert sum(i["intervalRequests"] for i in intervals) >= 5 * 4

    def behind() -> None:
        """Workers 10 s behind the master stamp the whole 4-s test before its start on the
        master's clock: every second of it is counted (5 requests each), none lost."""
        run = finished_run("behind")
        assert [e["kind"] for e in run["events"]] == ["clock-behind"], run["events"]
        intervals = _intervals(mongo_db, run["id"])
        counted = sum(i["intervalRequests"] for i in intervals)
        # The fake serves a stop's own second only a second after it (with `final` set).
        assert 5 * (served["behind"] - 1) <= counted <= 5 * served["behind"], intervals

    check_each({"ahead": ahead, "behind": behind})


def test_a_master_restarted_mid_run_ends_it_with_its_own_numbers(cli, mongo_db, tmp_path):
    """With the plugin and with stats deltas, at once: each waits for its restart."""
    sources = {"plugin": True, "stats": False}
    with ExitStack() as fakes:
        by_source = {
            source: fakes.enter_context(fake_locust(plugin=plugin))
            for source, plugin in sources.items()
        }
        for source, fake in by_source.items():
            fake.restart_after_swarm_sec = 4.0
            _create(cli, fake, name=f"demo-{source}", cluster=f"fake-{source}")
        commands = {source: _start_argv(f"demo-{source}") for source in sources}
        ended = run_at_once(commands, tmp_path / "runs")
        seen = {source: (fake.restarts, fake.stops) for source, fake in by_source.items()}

    def check(source: str) -> None:
        result = ended[source]
        assert result.exit_code == 6, result.stderr
        assert "master restarted" in result.stderr, result.stderr
        run = _run_of(mongo_db, f"demo-{source}")
        assert run["status"] == "Failed" and run["stopReason"] == "error"
        assert run["verdict"] == "error"
        assert "restarted" in run["error"]
        assert [e["kind"] for e in run["events"]] == ["locust-restarted"]
        assert run["finalStats"] is None, "the new master's numbers were taken for the run's"
        intervals = _intervals(mongo_db, run["id"])
        assert intervals, "the numbers collected before the restart were lost"
        assert run["lastMetrics"]["totalRequests"] == intervals[-1]["totalRequests"]
        restarts, stops = seen[source]
        assert restarts == 1 and stops >= 1, "the restarted master was left loading"
        shown = cli("runs", "show", run["id"])
        assert "locust-restarted" in shown.stdout, shown.stdout

    check_each({source: partial(check, source) for source in sources})
