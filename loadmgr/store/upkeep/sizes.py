"""Where the space goes: bytes per collection (the server's `collStats`), and the bytes
of runs and their intervals per test and per run-hour (`$bsonSize`, summed server side
in one pass: the answer has a row per run, never a document)."""

from __future__ import annotations

from typing import Any

import pymongo.errors
from pymongo.database import Database

from loadmgr.models import Scope
from loadmgr.store.connection import translate_errors

# At most this many tests are listed (largest first); the totals hold every one.
TESTS_SHOWN = 50


def collection_sizes(db: Database[dict[str, Any]], uri: str) -> list[dict[str, Any]]:
    """Each collection's documents, their bytes, and its indexes' bytes, largest first."""
    rows = []
    with translate_errors(uri):
        for name in sorted(db.list_collection_names()):
            if name.startswith("system."):
                continue
            stats = db.command("collStats", name)
            rows.append(
                {
                    "collection": name,
                    "documents": int(stats.get("count") or 0),
                    "bytes": int(stats.get("size") or 0),
                    "indexBytes": int(stats.get("totalIndexSize") or 0),
                }
            )
    return sorted(rows, key=lambda row: (-row["bytes"], row["collection"]))


def _sized(
    db: Database[dict[str, Any]],
    collection: str,
    match: dict[str, Any],
    key: str,
    extra: dict[str, Any],
) -> list[dict[str, Any]]:
    """Rows of `collection` grouped by `key`: their count and bytes (`$bsonSize`; where
    the server lacks it, older than MongoDB 4.4, the collection's mean size × count)."""
    group = {"_id": f"${key}", "documents": {"$sum": 1}, **extra}
    try:
        sized = {**group, "bytes": {"$sum": {"$bsonSize": "$$ROOT"}}}
        return list(
            db[collection].aggregate([{"$match": match}, {"$group": sized}], allowDiskUse=True)
        )
    except pymongo.errors.OperationFailure:
        mean = float(db.command("collStats", collection).get("avgObjSize") or 0)
        rows = list(
            db[collection].aggregate([{"$match": match}, {"$group": group}], allowDiskUse=True)
        )
        for row in rows:
            row["bytes"] = int(row["documents"] * mean)
        return rows


def history_sizes(db: Database[dict[str, Any]], scope: Scope, uri: str) -> dict[str, Any]:
    """The bytes of the scope's runs and intervals, per test (largest first) and per
    run-hour (interval bytes over the hours the intervals cover)."""
    with translate_errors(uri):
        intervals = _sized(
            db,
            "metrics_timeseries",
            scope.query(),
            "loadTestRunId",
            {"seconds": {"$sum": "$intervalSec"}},
        )
        runs = _sized(
            db,
            "load_test_runs",
            scope.query(),
            "id",
            {"test": {"$first": "$loadTestId"}, "name": {"$first": "$testName"}},
        )
    test_of = {row["_id"]: (row.get("test"), row.get("name")) for row in runs}
    tests: dict[Any, dict[str, Any]] = {}

    def entry(run_id: Any) -> dict[str, Any]:
        test_id, name = test_of.get(run_id, (None, None))
        return tests.setdefault(
            test_id,
            {
                "testId": test_id,
                "test": name or test_id or "(no run)",
                "runs": 0,
                "runBytes": 0,
                "intervals": 0,
                "intervalBytes": 0,
                "seconds": 0.0,
            },
        )

    for row in runs:
        item = entry(row["_id"])
        item["runs"] += 1
        item["runBytes"] += int(row["bytes"])
    for row in intervals:
        item = entry(row["_id"])
        item["intervals"] += int(row["documents"])
        item["intervalBytes"] += int(row["bytes"])
        seconds = row.get("seconds")
        item["seconds"] += float(seconds) if isinstance(seconds, int | float) else 0.0
    rows = sorted(tests.values(), key=lambda t: -(t["runBytes"] + t["intervalBytes"]))
    shown_ids = [row["testId"] for row in rows[:TESTS_SHOWN] if row["testId"]]
    with translate_errors(uri):
        names = {
            doc.get("id"): doc.get("name")
            for doc in db["load_tests"].find({"id": {"$in": shown_ids}}, {"id": 1, "name": 1})
        }
    for row in rows[:TESTS_SHOWN]:
        row["test"] = names.get(row["testId"]) or row["test"]
    for item in rows:
        item["bytesPerRunHour"] = _per_hour(item["intervalBytes"], item.pop("seconds"))
    interval_bytes = sum(int(r["bytes"]) for r in intervals)
    seconds = sum(float(r.get("seconds") or 0) for r in intervals)
    return {
        "runBytes": sum(int(r["bytes"]) for r in runs),
        "intervalBytes": interval_bytes,
        "bytesPerRunHour": _per_hour(interval_bytes, seconds),
        "tests": rows[:TESTS_SHOWN],
        "testsLeftOut": max(0, len(rows) - TESTS_SHOWN),
    }


def _per_hour(size: int, seconds: float) -> int | None:
    return int(size * 3600 / seconds) if seconds > 0 else None
