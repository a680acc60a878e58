"""`db prune` applying retention on mongomock: what each policy age does to ended runs,
what it never touches (a live run, a run's own numbers), a dry run changing nothing, one
prune at a time, and a prune stopped between its writes finished by the next."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import mongomock
import pytest
from pymongo import DeleteMany
from pymongo.errors import AutoReconnect

from loadmgr.errors import Conflict, DatabaseError, ValidationFailed
from loadmgr.models import RunStatus, Scope
from loadmgr.models.documents.compact import ENCODING
from loadmgr.models.stats.downsample import merge, windows
from loadmgr.service.upkeep.policies import RetentionSpec, list_policies, set_policy
from loadmgr.service.upkeep.prune import prune_history
from loadmgr.store import Store
from loadmgr.store.upkeep.retention import lease_key
from tests.metrics_data import START, make_run, make_test, plugin_snapshots, store_all

NOW = START + timedelta(days=100)


@pytest.fixture
def store() -> Store:
    store = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    store.ensure_indexes()
    return store


def ended(store: Store, test: Any, days_ago: float, count: int = 60, **fields: Any) -> Any:
    finished = NOW - timedelta(days=days_ago)
    run = make_run(test, finishedAt=finished, startedAt=finished - timedelta(minutes=2), **fields)
    store_all(store.db, runs=[run], intervals=plugin_snapshots(run, count, interval=5))
    return run


def totals(store: Store, run_id: str) -> tuple[int, int, list[tuple[str, int]]]:
    docs = store.metrics.find_for_run(run_id)
    per: dict[str, int] = {}
    for doc in docs:
        for item in doc["requestStats"]:
            per[item["name"]] = per.get(item["name"], 0) + item["intervalRequests"]
    return (
        sum(d["intervalRequests"] for d in docs),
        sum(d["intervalFailures"] for d in docs),
        sorted(per.items()),
    )


def snapshot(store: Store) -> dict[str, list[Any]]:
    return {
        name: sorted(
            (str(sorted(d.items())) for d in store.db[name].find({}, {"_id": False})),
        )
        for name in ("load_test_runs", "metrics_timeseries")
    }


def test_each_age_of_a_policy_does_its_part_and_never_more(store: Store) -> None:
    test = make_test()
    store_all(store.db, test=test)
    set_policy(
        store,
        "tester",
        RetentionSpec(
            keep_detail="1d", downsample="1m", drop_intervals_after="30d", drop_runs_after="90d"
        ),
    )
    fresh = ended(store, test, days_ago=0.5)
    old = ended(store, test, days_ago=2)
    older = ended(store, test, days_ago=40)
    oldest = ended(store, test, days_ago=95)
    live = ended(store, test, days_ago=95, status=RunStatus.RUNNING)
    before = {run.id: totals(store, run.id) for run in (fresh, old, live)}

    result = prune_history(store, now=NOW)

    assert result["runsDropped"] == 1 and result["droppedRunIds"] == [oldest.id]
    assert result["runsWithIntervalsDropped"] == 1 and result["runsDownsampled"] == 1
    # Detail kept: the fresh run and the live one, whatever its age.
    for run in (fresh, live):
        assert store.metrics.count_for_run(run.id) == 60
        assert totals(store, run.id) == before[run.id]
    # Downsampled: 60 intervals of 5 s are 5 windows of 1 m, holding every request.
    assert store.metrics.count_for_run(old.id) == 5
    assert totals(store, old.id) == before[old.id]
    # Intervals dropped; the run, its final stats and verdict kept.
    assert store.metrics.count_for_run(older.id) == 0
    kept = store.runs.find_by_id(older.id)
    assert kept is not None and kept.finalStats == older.finalStats
    assert kept.intervalsKept is not None and kept.intervalsKept["state"] == "dropped"
    downsampled = store.runs.find_by_id(old.id)
    assert downsampled is not None and downsampled.intervalsKept is not None
    assert downsampled.intervalsKept["resolutionSec"] == 60
    assert store.runs.find_by_id(oldest.id) is None
    assert store.metrics.count_for_run(oldest.id) == 0
    # Run again: nothing left to do.
    again = prune_history(store, now=NOW)
    assert again["intervalsMerged"] == again["intervalsDropped"] == again["runsDropped"] == 0


def test_a_dry_run_changes_nothing_and_says_what_a_prune_would(store: Store) -> None:
    test = make_test()
    store_all(store.db, test=test)
    set_policy(store, "t", RetentionSpec(keep_detail="1d", downsample="1m"))
    ended(store, test, days_ago=2)
    before = snapshot(store)
    planned = prune_history(store, now=NOW, dry_run=True)
    assert snapshot(store) == before
    done = prune_history(store, now=NOW)
    assert (planned["intervalsMerged"], planned["windowsWritten"]) == (60, 5)
    assert (done["intervalsMerged"], done["windowsWritten"]) == (60, 5)


def test_policies_match_by_test_then_tag_then_all(store: Store) -> None:
    tagged = make_test("tagged", tags=["nightly"])
    own = make_test("own", tags=["nightly"])
    plain = make_test("plain")
    for test in (tagged, own, plain):
        store_all(store.db, test=test)
    set_policy(store, "t", RetentionSpec(keep_detail="1d", drop_intervals_after="1d"))
    set_policy(store, "t", RetentionSpec(tag="nightly", keep_detail="1d", downsample="1m"))
    set_policy(store, "t", RetentionSpec(test="own", keep_detail="400d"))
    runs = {t.name: ended(store, t, days_ago=2) for t in (tagged, own, plain)}
    prune_history(store, now=NOW)
    counts = {name: store.metrics.count_for_run(run.id) for name, run in runs.items()}
    assert counts == {"tagged": 5, "own": 60, "plain": 0}
    assert [p["target"] for p in list_policies(store)] == ["all", "tag:nightly", "test:own"]


def test_a_prune_stopped_between_its_writes_loses_and_doubles_nothing(store: Store) -> None:
    test = make_test()
    store_all(store.db, test=test)
    set_policy(store, "t", RetentionSpec(keep_detail="1d", downsample="1m"))
    run = ended(store, test, days_ago=2)
    before = totals(store, run.id)
    # What a prune killed after writing its merged windows, before deleting their
    # originals, leaves: every window written, no original deleted.
    docs = list(store.db["metrics_timeseries"].find({"loadTestRunId": run.id}, {"_id": 0}))
    for group in windows(sorted(docs, key=lambda d: d["seq"]), 60):
        window = merge(group, 60)
        store.db["metrics_timeseries"].replace_one(
            {"loadTestRunId": run.id, "seq": window["seq"]}, window
        )
    assert store.metrics.count_for_run(run.id) == 60
    assert totals(store, run.id) == before  # readers skip what a window covers
    result = prune_history(store, now=NOW)
    assert result["leftoversFinished"] == 55 and result["intervalsMerged"] == 0
    assert store.metrics.count_for_run(run.id) == 5
    assert totals(store, run.id) == before


def test_one_prune_at_a_time(store: Store) -> None:
    set_policy(store, "t", RetentionSpec(keep_detail="1d", downsample="1m"))
    holder = '{"pid": 1, "host": "elsewhere"}'
    assert store.leases.acquire(lease_key(None, None), holder, store.server_now(), 300)
    with pytest.raises(Conflict, match="another 'db prune'"):
        prune_history(store, now=NOW)
    prune_history(store, now=NOW, dry_run=True)  # writes nothing: needs no lease


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"keep_detail": "30"}, "invalid --keep-detail '30'"),
        ({"keep_detail": "1d", "downsample": "5s"}, "invalid --downsample"),
        ({"keep_detail": "30d", "drop_intervals_after": "1d"}, "not be shorter"),
        ({"keep_detail": "1d", "drop_intervals_after": "9d", "drop_runs_after": "2d"}, "shorter"),
        ({"keep_detail": "1d", "test": "a", "tag": "b"}, "not both"),
        ({"keep_detail": "101000d"}, "100 years"),
    ],
)
def test_a_bad_policy_is_refused_before_any_database(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        RetentionSpec(**fields)


def test_the_tick_prunes_once_a_day_and_only_with_policies(store: Store) -> None:
    from loadmgr.service.upkeep.prune import daily_prune

    lines: list[str] = []
    assert daily_prune(store, NOW, lines.append) is None  # no policy: not even claimed
    test = make_test()
    store_all(store.db, test=test)
    set_policy(store, "t", RetentionSpec(keep_detail="1d", downsample="1m"))
    run = ended(store, test, days_ago=2)
    assert daily_prune(store, NOW, lines.append) is not None
    assert store.metrics.count_for_run(run.id) == 5
    # Another tick the same day (this machine or another): nothing.
    assert daily_prune(store, NOW + timedelta(hours=23), lines.append) is None
    assert daily_prune(store, NOW + timedelta(hours=25), lines.append) is not None
    assert lines[0].startswith("retention: merged 60 intervals into 5 windows")


def test_compact_intervals_are_downsampled_exactly_and_stored_compact(store: Store) -> None:
    """What the collector stores (compact: docs/storage.md) is merged as its numbers say,
    per request too, and the merged windows are stored compact as well."""
    test = make_test()
    store_all(store.db, test=test)
    set_policy(store, "tester", RetentionSpec(keep_detail="1d", downsample="1m"))
    finished = NOW - timedelta(days=2)
    run = make_run(test, finishedAt=finished, startedAt=finished - timedelta(minutes=2))
    store_all(store.db, runs=[run])
    store.metrics.save(plugin_snapshots(run, 60, interval=5))
    assert all(doc.get("encoding") == ENCODING for doc in store.db["metrics_timeseries"].find())
    before = totals(store, run.id)

    prune_history(store, now=NOW)

    assert store.metrics.count_for_run(run.id) == 5
    assert totals(store, run.id) == before
    for doc in store.db["metrics_timeseries"].find({"loadTestRunId": run.id}):
        assert doc.get("encoding") == ENCODING and "hist" not in doc and "requestStats" not in doc


def test_a_prune_failing_between_a_runs_windows_and_their_deletes_loses_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writes go through the writer thread: one failing there (the server gone after a
    run's windows were written, before their originals were deleted) is the prune's error
    (exit 3), every request still counted once, no run marked before its windows, the
    lease freed; the next prune finishes it."""
    test = make_test()
    store_all(store.db, test=test)
    set_policy(store, "t", RetentionSpec(keep_detail="1d", downsample="1m"))
    runs = [ended(store, test, days_ago=2 + n) for n in range(3)]
    before = {run.id: totals(store, run.id) for run in runs}
    collection = store.metrics.collection
    real = collection.bulk_write
    deletes = 0

    def bulk_write(requests: list[Any], **options: Any) -> Any:
        nonlocal deletes
        if isinstance(requests[0], DeleteMany):
            deletes += 1
            if deletes == 2:  # the second run's windows are written, its originals not
                raise AutoReconnect("connection closed")
        return real(requests, **options)

    monkeypatch.setattr(collection, "bulk_write", bulk_write)
    with pytest.raises(DatabaseError):
        prune_history(store, now=NOW)
    assert {run.id: totals(store, run.id) for run in runs} == before
    for doc in store.db["load_test_runs"].find():
        if doc.get("intervalsKept"):  # marked only once its windows and deletes are done
            assert store.metrics.count_for_run(doc["id"]) == 5
    assert not (store.leases.holder(lease_key(None, None)) or {}).get("runId")  # released

    monkeypatch.setattr(collection, "bulk_write", real)
    result = prune_history(store, now=NOW)
    assert result["leftoversFinished"] == 55
    assert {run.id: totals(store, run.id) for run in runs} == before
    assert [store.metrics.count_for_run(run.id) for run in runs] == [5, 5, 5]
    kept = [r["intervalsKept"]["state"] for r in store.db["load_test_runs"].find()]
    assert kept == ["downsampled"] * 3


def test_a_run_without_intervals_is_left_unmarked_and_one_with_unmergeable_ones_marked(
    store: Store,
) -> None:
    """Marking a run costs the server more than looking at it again when it has no
    intervals (one indexed read); one whose intervals cannot merge is marked, so the next
    prune does not read them all again."""
    test = make_test()
    store_all(store.db, test=test)
    set_policy(store, "t", RetentionSpec(keep_detail="1d", downsample="1m"))
    empty = ended(store, test, days_ago=2, count=0)
    rolling = ended(store, test, days_ago=3)
    store.db["metrics_timeseries"].update_many(
        {"loadTestRunId": rolling.id}, {"$set": {"percentileWindow": "rolling"}}
    )
    result = prune_history(store, now=NOW)
    assert (result["runsDownsampled"], result["intervalsMerged"]) == (1, 0)
    assert store.runs.find_by_id(empty.id).intervalsKept is None  # type: ignore[union-attr]
    marked = store.runs.find_by_id(rolling.id).intervalsKept  # type: ignore[union-attr]
    assert marked is not None and marked["state"] == "downsampled"
