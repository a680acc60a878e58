"""Newest-first reads in widening `createdAt` windows (store/upkeep/newest.py) answer
exactly what the one sorted query answered: every run once, in the same order, ties on a
window's edge neither lost nor doubled, future dates first, dates before 1970 and runs
without a date last. Checked here on mongomock; `check_windows_answer_the_sorted_query`
runs on SecantusDB in tests/integration/test_newest_windows.py."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import mongomock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmgr.store.upkeep import newest

NOW = datetime(2026, 12, 6, 12, 0, 0, 123000, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
ORDER = [("loadTestId", 1), ("createdAt", -1), ("id", 1)]
# The windows' edges and their neighbours, where a lost or doubled run would hide.
EDGES = [NOW - HOUR * (2**k - 1) + timedelta(milliseconds=d) for k in range(12) for d in (-1, 0, 1)]
FAR = [
    NOW + timedelta(days=3),
    datetime(1970, 1, 1, tzinfo=timezone.utc),
    datetime(1969, 7, 20, tzinfo=timezone.utc),
    newest.FLOOR + HOUR,
]
ms = st.integers(min_value=0, max_value=3 * 365 * 24 * 3600 * 1000)
dates = st.one_of(
    st.sampled_from(EDGES + FAR), ms.map(lambda n: NOW - timedelta(milliseconds=n)), st.none()
)
runs = st.lists(st.tuples(st.sampled_from(["a", "b"]), dates, st.booleans()), max_size=40)
bounds = st.one_of(
    st.none(), st.sampled_from(EDGES), ms.map(lambda n: NOW - timedelta(milliseconds=n))
)


def check_windows_answer_the_sorted_query(
    collection: Any,
    made: list[tuple[str, datetime | None, bool]],
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> None:
    """Store `made` (test, createdAt or None, whether the field is absent rather than
    null) and compare the windows' first `limit` with the sorted query's."""
    collection.delete_many({})
    docs = []
    for n, (test, created, absent) in enumerate(made):
        doc: dict[str, Any] = {"id": f"r{n:03d}", "loadTestId": test}
        if created is not None or not absent:
            doc["createdAt"] = created
        docs.append(doc)
    if docs:
        collection.insert_many(docs)
    collection.create_index([("loadTestId", 1), ("createdAt", -1)])
    query: dict[str, Any] = {"loadTestId": "a"}
    created_in = {"$gte": since, "$lte": until}
    if since is not None or until is not None:
        query["createdAt"] = {op: v for op, v in created_in.items() if v is not None}
    plain = collection.find(query, {"_id": False, "id": True}).sort(ORDER)
    expected = [doc["id"] for doc in (plain.limit(limit) if limit else plain)]
    walk = newest.in_windows(
        collection,
        {"loadTestId": "a"},
        ORDER,
        {"_id": False, "id": True},
        since=since,
        until=until,
        now=NOW,
    )
    got = [doc["id"] for doc in itertools.islice(walk, limit or None)]
    walk.close()
    assert got == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(made=runs, since=bounds, until=bounds, limit=st.sampled_from([0, 1, 2, 5, 30]))
def test_windows_answer_what_the_sorted_query_answered(
    made: list[tuple[str, datetime | None, bool]],
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> None:
    collection = mongomock.MongoClient(tz_aware=True)["db"]["load_test_runs"]
    check_windows_answer_the_sorted_query(collection, made, since, until, limit)


def _queries_of(collection: Any) -> list[dict[str, Any]]:
    """The filters `collection.find` is asked from now on, in order."""
    asked: list[dict[str, Any]] = []
    find = collection.find

    def counted(query: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        asked.append(query)
        return find(query, *args, **kwargs)

    collection.find = counted
    return asked


def test_the_walk_stops_reading_when_the_caller_stops() -> None:
    """Reading the newest run of a long history asks the newest windows only."""
    collection = mongomock.MongoClient(tz_aware=True)["db"]["load_test_runs"]
    collection.insert_many(
        {"id": f"r{n}", "loadTestId": "a", "createdAt": NOW - HOUR * n / 2} for n in range(2000)
    )
    asked = _queries_of(collection)
    walk = newest.in_windows(collection, {"loadTestId": "a"}, ORDER, None, now=NOW)
    assert [doc["id"] for doc in itertools.islice(walk, 2)] == ["r0", "r1"]
    walk.close()
    assert len(asked) == 1  # (now - 1 h, ...]: two runs (the third is on its edge)


def test_a_history_of_no_runs_costs_a_few_empty_windows() -> None:
    """From now back to 1970 in doubling windows: ~log2(57 years / 1 h) of them."""
    collection = mongomock.MongoClient(tz_aware=True)["db"]["load_test_runs"]
    asked = _queries_of(collection)
    assert list(newest.in_windows(collection, {"loadTestId": "a"}, ORDER, None, now=NOW)) == []
    assert len(asked) <= 21
    assert asked[-1] == {"loadTestId": "a", "createdAt": None}  # the runs without a date


def test_only_an_index_of_the_equalities_then_created_at_serves_windows() -> None:
    indexes = [
        [("tenantId", 1), ("envId", 1), ("createdAt", -1), ("id", 1)],
        [("createdAt", -1), ("id", 1)],
        [("loadTestId", 1), ("createdAt", -1)],
    ]
    assert newest.served(indexes, {})
    assert newest.served(indexes, {"envId": "e", "tenantId": "t"})
    assert newest.served(indexes, {"loadTestId": "x"})
    assert not newest.served(indexes, {"tenantId": "t"})  # envId between: not bounded
    assert not newest.served(indexes, {"status": {"$in": ["Failed"]}})
    assert not newest.served(indexes, {"$and": []})
