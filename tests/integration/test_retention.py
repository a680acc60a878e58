"""Retention on a real MongoDB-wire server: `db retention`, `db prune` applying it (a
SIGKILL mid-way and a second run losing and doubling nothing), one prune at a time,
`db status` saying where the space goes, and the hot reads served by indexes."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import timedelta
from typing import Any

from loadmgr.models import RunStatus, Scope
from loadmgr.models.documents.base import utcnow
from loadmgr.models.documents.compact import expand
from loadmgr.models.histogram import merge_text_into, summary
from loadmgr.store import Store
from tests.conftest import error_line, loadmgr_command, ok, reaped
from tests.metrics_data import START, make_run, make_test, plugin_snapshots, store_all
from tests.polling import wait_for


def history(db: Any, runs: int, intervals: int, *, days_ago: float = 2, **fields: Any) -> list[Any]:
    """`runs` ended runs of one test, `intervals` plugin intervals of 5 s each."""
    test = make_test("nightly", tags=["nightly"])
    made = []
    finished = utcnow() - timedelta(days=days_ago)
    for _ in range(runs):
        run = make_run(
            test, finishedAt=finished, startedAt=START, collectionMode="plugin", **fields
        )
        made.append(run)
        store_all(db, runs=[run], intervals=plugin_snapshots(run, intervals, interval=5))
    db["load_tests"].insert_one(test.to_document())
    return made


def content(db: Any, run_id: str) -> dict[str, Any]:
    """A run's counts and percentiles as a reader sees them: the intervals in seq order,
    those a merged window covers skipped (what every loadmgr read does)."""
    whole: dict[int, int] = {}
    per: dict[str, dict[int, int]] = {}
    through = 0
    requests = failures = documents = 0
    stored = db["metrics_timeseries"].find({"loadTestRunId": run_id}).sort("seq", 1)
    for doc in map(expand, stored):  # compact intervals read as plain ones
        if doc["seq"] <= through:
            continue
        through = max(through, doc.get("mergedThrough") or doc["seq"])
        documents += 1
        requests += doc["intervalRequests"]
        failures += doc["intervalFailures"]
        merge_text_into(whole, doc["hist"])
        for item in doc["requestStats"]:
            merge_text_into(per.setdefault(item["name"], {}), item["hist"])
    return {
        "requests": requests,
        "failures": failures,
        "whole": summary(whole),
        "per": {name: summary(h) for name, h in per.items()},
    }


def test_policies_are_set_listed_and_removed(cli: Any, mongo_db: Any) -> None:
    history(mongo_db, 1, 2)
    ok(cli("db", "retention", "set", "--keep-detail", "30d", "--downsample", "1m"))
    ok(
        cli(
            "db",
            "retention",
            "set",
            "--tag",
            "nightly",
            "--keep-detail",
            "7d",
            "--drop-intervals-after",
            "400d",
        )
    )
    changed = ok(
        cli(
            "db",
            "retention",
            "set",
            "--test",
            "nightly",
            "--keep-detail",
            "1d",
            "--downsample",
            "5m",
            "-o",
            "json",
        )
    ).json()
    assert isinstance(changed, dict) and changed["target"] == "test:nightly"
    again = ok(
        cli("db", "retention", "set", "--test", "nightly", "--keep-detail", "2d", "-o", "json")
    ).json()
    assert isinstance(again, dict) and again["id"] == changed["id"]  # replaced in place
    listed = ok(cli("db", "retention", "list", "-o", "json")).json()
    assert [(p["target"], p["keepDetail"], p["downsample"]) for p in listed] == [
        ("all", "30d", "1m"),
        ("tag:nightly", "7d", "-"),
        ("test:nightly", "2d", "-"),
    ]
    assert (
        "retention policy of tag:nightly"
        in ok(cli("db", "retention", "remove", "--tag", "nightly")).stderr
    )
    assert "no retention policy for tag:nightly" in error_line(
        cli("db", "retention", "remove", "--tag", "nightly"), 4
    )
    assert "invalid --keep-detail" in error_line(
        cli("db", "retention", "set", "--keep-detail", "30"), 2
    )
    assert "not found" in error_line(
        cli("db", "retention", "set", "--test", "nope", "--keep-detail", "1d"), 4
    )
    assert mongo_db["retention_policies"].count_documents({}) == 2


def test_prune_applies_them_and_never_touches_a_live_run(cli: Any, mongo_db: Any) -> None:
    old = history(mongo_db, 2, 36)
    live = history(mongo_db, 1, 36, days_ago=900, status=RunStatus.RUNNING)
    before = {run.id: content(mongo_db, run.id) for run in [*old, *live]}
    ok(cli("db", "retention", "set", "--keep-detail", "1d", "--downsample", "1m"))
    windows = [("0s", "3m"), ("1m", "2m"), ("0s", "1m")]
    read = {w: _window(cli, old[0].id, *w) for w in windows}
    planned = ok(cli("db", "prune", "--dry-run", "-o", "json")).json()
    assert isinstance(planned, dict)
    assert planned["retention"]["intervalsMerged"] == 72
    assert mongo_db["metrics_timeseries"].count_documents({}) == 108  # a dry run
    done = ok(cli("db", "prune", "-o", "json")).json()
    assert isinstance(done, dict) and done["retention"]["windowsWritten"] == 6
    for run in old:
        assert mongo_db["metrics_timeseries"].count_documents({"loadTestRunId": run.id}) == 3
    assert mongo_db["metrics_timeseries"].count_documents({"loadTestRunId": live[0].id}) == 36
    assert {run.id: content(mongo_db, run.id) for run in [*old, *live]} == before
    shown = ok(cli("metrics", "show", old[0].id, "-o", "json")).json()
    assert isinstance(shown, dict) and shown["intervals"] == "1m (downsampled)"
    # What loadmgr itself reads of a pruned run: the same numbers over whole windows.
    assert {w: _window(cli, old[0].id, *w) for w in windows} == read
    assert read[("0s", "3m")]["requests"] == before[old[0].id]["requests"]


def _window(cli: Any, run_id: str, start: str, end: str) -> dict[str, Any]:
    shown = ok(cli("metrics", "show", run_id, "--from", start, "--to", end, "-o", "json")).json()
    assert isinstance(shown, dict)
    keys = ("requests", "failures", "p50ResponseMs", "p95ResponseMs", "p99ResponseMs")
    return {key: shown[key] for key in keys}


def test_two_prunes_at_once_do_the_work_once(cli: Any, mongo_db: Any) -> None:
    history(mongo_db, 1, 12)
    ok(cli("db", "retention", "set", "--keep-detail", "1d", "--downsample", "1m"))
    # Another prune, on another machine, holds the scope's lease.
    holder = '{"pid": 1, "host": "elsewhere", "bootId": "b", "pidNs": "n"}'
    mongo_db["cluster_leases"].insert_one(
        {
            "_id": "retention-prune:*:*",
            "runId": holder,
            "expiresAt": utcnow() + timedelta(minutes=5),
        }
    )
    assert "another 'db prune'" in error_line(cli("db", "prune"), 5)
    assert mongo_db["metrics_timeseries"].count_documents({}) == 12
    mongo_db["cluster_leases"].delete_many({})
    ok(cli("db", "prune"))
    assert mongo_db["metrics_timeseries"].count_documents({}) == 1


def test_a_prune_killed_mid_way_and_run_again_loses_and_doubles_nothing(
    cli: Any, mongo_db: Any
) -> None:
    # 20 runs of 10 minutes (120 intervals, 10 merged windows each): the prune goes run by
    # run, so a kill as its first window is written lands with most runs still to do.
    runs = history(mongo_db, 20, 120)
    before = {run.id: content(mongo_db, run.id) for run in runs}
    ok(cli("db", "retention", "set", "--keep-detail", "1d", "--downsample", "1m"))
    merged = {"resolutionSec": 60}
    with reaped(
        subprocess.Popen(
            [*loadmgr_command(), "db", "prune"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
    ) as prune:
        assert wait_for(lambda: mongo_db["metrics_timeseries"].find_one(merged), timeout=120)
        prune.send_signal(signal.SIGKILL)
        prune.wait(timeout=30)
    windows = mongo_db["metrics_timeseries"].count_documents(merged)
    assert 0 < windows < 20 * 10, "killed before it began or after it ended: no test"
    # Killed: every run reads as it did (a half-done run's leftovers are skipped).
    assert {run.id: content(mongo_db, run.id) for run in runs} == before
    again = ok(cli("db", "prune", "-o", "json")).json()  # the dead holder's lease is taken over
    assert isinstance(again, dict)
    assert mongo_db["metrics_timeseries"].count_documents({}) == 20 * 10
    assert mongo_db["metrics_timeseries"].count_documents(merged) == 20 * 10
    assert {run.id: content(mongo_db, run.id) for run in runs} == before


def test_status_says_where_the_space_goes(cli: Any, mongo_db: Any) -> None:
    history(mongo_db, 2, 12)
    status = ok(cli("db", "status", "-o", "json")).json()
    assert isinstance(status, dict)
    space = status["space"]
    sizes = {row["collection"]: row for row in space["collections"]}
    assert sizes["metrics_timeseries"]["documents"] == 24
    assert sizes["metrics_timeseries"]["bytes"] > 0
    [test] = space["tests"]
    assert (test["test"], test["runs"], test["intervals"]) == ("nightly", 2, 24)
    # 24 intervals of 5 s: two minutes, so an hour is 30 times their bytes.
    assert test["bytesPerRunHour"] == test["intervalBytes"] * 30
    assert space["intervalBytes"] == test["intervalBytes"]


def _plan(cursor: Any) -> list[str]:
    """The stages of a query's winning plan (SecantusDB answers explain as MongoDB does)."""
    stages = []
    stage: dict[str, Any] | None = cursor.explain()["queryPlanner"]["winningPlan"]
    while stage:
        stages.append(stage["stage"])
        stage = stage.get("inputStage")
    return stages


def test_the_hot_reads_use_an_index(mongo_db: Any) -> None:
    """Each query the read paths of a long history send (docs/benchmarks.md, "Reads that
    scale"), as loadmgr sends it: none scans the collection on SecantusDB, whose planner
    uses an index only when every field of the filter is in it."""
    [run] = history(mongo_db, 1, 12)
    Store(mongo_db, Scope(), "").ensure_indexes()  # as any command that writes does
    runs, intervals = mongo_db["load_test_runs"], mongo_db["metrics_timeseries"]
    newest = [("createdAt", -1), ("id", 1)]  # Repository.find_newest
    in_order = [("seq", 1), ("timestamp", 1)]  # store/metrics.py IN_ORDER
    hot = {
        "runs list": runs.find({}).sort(newest).limit(50),
        "tests list": mongo_db["load_tests"].find({}).sort(newest).limit(50),
        "metrics show/report": intervals.find({"loadTestRunId": run.id}).sort(in_order),
        "db prune: a run's intervals": intervals.find({"loadTestRunId": run.id}).sort(in_order),
        "db prune: a window's originals": intervals.find(
            {"loadTestRunId": run.id, "seq": {"$gt": 1, "$lte": 12}}
        ),
        "db prune: a run's intervals dropped": intervals.find(
            {"loadTestRunId": run.id, "seq": {"$gte": 0}}
        ),
    }
    plans = {name: _plan(cursor) for name, cursor in hot.items()}
    assert all("COLLSCAN" not in plan for plan in plans.values()), plans
    # `tests trend` asks for a test's runs alone and checks the rest in loadmgr (issue
    # 26): with the status beside the test, SecantusDB scans. Every hot read, as the
    # repositories send it: tests/integration/test_hot_reads_use_an_index.py.
    trend = runs.find({"loadTestId": run.loadTestId}).sort(
        [("loadTestId", 1), ("createdAt", -1)]
    )
    assert "COLLSCAN" not in _plan(trend)
    assert "COLLSCAN" in _plan(runs.find({"loadTestId": run.loadTestId, "status": "Finished"}))
