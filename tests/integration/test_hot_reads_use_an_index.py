"""The hot reads of a long history on SecantusDB, whose planner uses an index only when
every field of the filter is in it: each query loadmgr's repositories send, captured as
sent, is planned on an index (docs/storage.md, "Indexes"), and the reads that check part
of their filter in loadmgr's process answer exactly what the server answered to the
whole filter (runs of every status interleaved, other tests, other scopes, Go runs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pymongo
import pytest
from pymongo import monitoring

from loadmgr.models import RunStatus, Scope
from loadmgr.store import Store
from loadmgr.store.runs import ACTIVE_STATUSES
from tests.integration.test_retention import _plan
from tests.metrics_data import START, make_run, make_test, plugin_snapshots, store_all

HOT = ("load_tests", "load_test_runs", "metrics_timeseries")


class Finds(monitoring.CommandListener):
    """The filter and sort of each `find` sent to a collection of HOT."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        collection = event.command.get(event.command_name)
        if event.command_name == "find" and collection in HOT:
            found = event.command.get("filter") or {}
            self.sent.append((collection, found, event.command.get("sort")))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


STATUSES = [status.value for status in RunStatus]


def _history(db: Any) -> dict[str, Any]:
    """A test's 36 runs, newest last, every status interleaved (some finished ones
    without final stats, two branches, a seventh in another tenant), another test's, and a
    run the Go service wrote; the newest finished run's 24 plugin intervals."""
    test, other = make_test("nightly"), make_test("other")
    made = []
    for n in range(36):
        status = STATUSES[n % len(STATUSES)]
        fields: dict[str, Any] = {"status": status, "createdAt": START + timedelta(hours=n)}
        if status == RunStatus.FINISHED.value and n % 4 == 3:
            fields["finalStats"] = None
        if n % 7 == 2:
            fields["tenantId"] = "acme"
        fields["ci"] = {"branch": "main" if n % 3 else "dev"}
        made.append(make_run(test, **fields))
        made.append(make_run(other, status=status, createdAt=START + timedelta(hours=n)))
    store_all(db, test, runs=made)
    db["load_tests"].insert_one(other.to_document())
    db["load_test_runs"].insert_one(
        {"id": "go-run", "loadTestId": test.id, "status": "Finished", "createdat": 1}
    )
    newest = max(
        (r for r in made if r.loadTestId == test.id and r.status == RunStatus.FINISHED),
        key=lambda r: r.createdAt,
    )
    store_all(db, intervals=plugin_snapshots(newest, 24, interval=5))
    Store(db, Scope(), "").ensure_indexes()  # as any command that writes does
    return {"test": test.id, "run": newest.id}


SINCE, UNTIL = START + timedelta(hours=5), START + timedelta(hours=30)
WINDOW = (START + timedelta(seconds=31), START + timedelta(seconds=80))
Read = Callable[[Store, dict[str, Any]], object]

# Every hot read of a long history, as the repositories send it.
HOT_READS: dict[str, Read] = {
    "runs list": lambda s, h: s.runs.find_many(limit=50),
    "runs list --status": lambda s, h: s.runs.find_many(statuses=["Failed"]),
    "runs list --branch": lambda s, h: s.runs.find_many(branch="main"),
    "tests list": lambda s, h: s.tests.find_many(limit=50),
    "tests trend --last 1000": lambda s, h: s.runs.history(h["test"], ["id"], limit=1000),
    "tests trend --since, a baseline's until": lambda s, h: s.runs.history(
        h["test"], ["id"], since=SINCE, until=UNTIL
    ),
    "tests trend --branch": lambda s, h: s.runs.history(h["test"], ["id"], branch="main"),
    "db prune, db migrate: pages of ended runs": lambda s, h: [
        s.runs.ended_page(None, ["id"], 5),
        s.runs.ended_page("m", ["id"], 5),
    ],
    "metrics show/report/export": lambda s, h: list(s.metrics.iter_for_run(h["run"], {})),
    "metrics show --from/--to": lambda s, h: list(
        s.metrics.iter_window(h["run"], *WINDOW, {"seq": True})
    ),
    "db prune: a run's intervals": lambda s, h: list(s.metrics.iter_raw(h["run"], [])),
}
SCOPES = {"no scope": Scope(), "--tenant": Scope(tenant="acme")}
# In a scope these scan `load_test_runs` (docs/storage.md lists them: not hot).
UNSCOPED_ONLY = {"runs list --status", "runs list --branch"}
CASES = [
    pytest.param(read, scope, id=f"{name}, {scoped}")
    for name, read in HOT_READS.items()
    for scoped, scope in SCOPES.items()
    if scope == Scope() or name not in UNSCOPED_ONLY
]


@pytest.mark.parametrize(("read", "scope"), CASES)
def test_each_hot_read_uses_an_index(
    mongo_uri: str, mongo_db: Any, read: Read, scope: Scope
) -> None:
    history = _history(mongo_db)
    finds = Finds()
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        mongo_uri, event_listeners=[finds], tz_aware=True
    )
    try:
        read(Store(client[mongo_db.name], scope, ""), history)
    finally:
        client.close()
    assert finds.sent
    plans = []
    for collection, found, sort in finds.sent:
        cursor = mongo_db[collection].find(found)
        plans.append((found, _plan(cursor.sort(list(sort.items())) if sort else cursor)))
    assert all("COLLSCAN" not in plan for _found, plan in plans), plans


def _server_history(db: Any, test_id: str, scope: Scope, **asked: Any) -> list[str]:
    """What the server answered to a test's history as one filter (before issue 26)."""
    query: dict[str, Any] = {"loadTestId": test_id, "status": "Finished"}
    query.update({"finalStats": {"$ne": None}, **scope.query()})
    created = {"$gte": asked.get("since"), "$lte": asked.get("until")}
    if any(created.values()):
        query["createdAt"] = {key: value for key, value in created.items() if value}
    if asked.get("branch"):
        query["ci.branch"] = asked["branch"]
    cursor = db["load_test_runs"].find(query).sort([("loadTestId", 1), ("createdAt", -1)])
    return [doc["id"] for doc in cursor.limit(asked.get("limit", 30))]


ASKED = [
    {"limit": 1},
    {"limit": 3},
    {"limit": 30},
    {"limit": 0},
    {"limit": 0, "since": SINCE},
    {"limit": 4, "until": UNTIL},
    {"limit": 0, "since": SINCE, "until": UNTIL},
    {"limit": 2, "branch": "main"},
    {"limit": 0, "branch": "dev", "since": SINCE},
]


def test_a_tests_history_is_what_the_whole_filter_answered(mongo_db: Any) -> None:
    history = _history(mongo_db)
    fields = ["id", "createdAt", "finalStats.totals"]
    for scope in SCOPES.values():
        store = Store(mongo_db, scope, "")
        for asked in ASKED:
            docs = store.runs.history(history["test"], fields, **asked)
            expected = _server_history(mongo_db, history["test"], scope, **asked)
            assert [d["id"] for d in docs] == expected, (scope, asked)
            assert all(set(d) <= {"id", "createdAt", "finalStats"} for d in docs)
        # Asked for no final stats, none come back (the check's own fields are dropped).
        [doc] = store.runs.history(history["test"], ["id"], limit=1)
        assert set(doc) == {"id"}


@pytest.mark.parametrize("page", [1, 4, 500])
def test_the_pages_of_ended_runs_are_what_the_whole_filter_answered(
    mongo_db: Any, page: int
) -> None:
    _history(mongo_db)
    for scope in SCOPES.values():
        store = Store(mongo_db, scope, "")
        seen: list[str] = []
        after = None
        while batch := store.runs.ended_page(after, ["loadTestId"], page):
            assert len(batch) <= page
            seen += [doc["id"] for doc in batch]
            after = batch[-1]["id"]
        query = store.runs.owned({"status": {"$nin": ACTIVE_STATUSES}})
        expected = sorted(doc["id"] for doc in mongo_db["load_test_runs"].find(query))
        assert seen == expected, scope
        assert "go-run" not in seen


def test_a_window_of_intervals_is_what_the_whole_filter_answered(mongo_db: Any) -> None:
    history = _history(mongo_db)
    store = Store(mongo_db, Scope(), "")
    edges = [START + timedelta(seconds=s) for s in (0, 4, 5, 30, 31, 60, 119, 120, 200)]
    for start in edges:
        for end in [None, *edges]:
            read = store.metrics.iter_window(history["run"], start, end, {"seq": True})
            bounds: dict[str, Any] = {"windowStart": {"$gte": start}}
            if end is not None:
                bounds["windowEnd"] = {"$lte": end}
            query = {"loadTestRunId": history["run"], **bounds}
            expected = mongo_db["metrics_timeseries"].find(query).sort("seq", 1)
            assert [d["seq"] for d in read] == [d["seq"] for d in expected], (start, end)
