"""The floors: the same reads as loadmgr's, hand-written with pymongo and json only.

Run as a script (`python bench/floor.py MODE URI DATABASE ARG [FIELDS]`), so that, like
loadmgr, it pays for the interpreter's start-up and its imports. It imports nothing of
loadmgr's and prints what loadmgr prints: a JSON array, indented by 2, dates ISO-8601 UTC.

  tests URI DB LIMIT            load_tests newest first, without locustfileContent
  runs URI DB LIMIT             load_test_runs newest first, without the bulky fields
  intervals URI DB RUN          one run and all its intervals, whole (prints the count)
  prune URI DB WINDOW           the reads and writes of a prune into windows of WINDOW
                                intervals, as few round trips as loadmgr's: per run, its
                                intervals read whole, then one bulk write rewriting each
                                window's first interval, then one deleting the rest by seq
                                range (no merging: the I/O alone)
  timeseries URI DB RUN FIELDS  a run's intervals in seq order, only FIELDS (comma-separated)
  run URI DB RUN                one run document
  trend URI DB TEST LIMIT       a test's last finished runs, the fields `tests trend` reads,
                                searched for change points by loadmgr's own search (the
                                one import of loadmgr's: the same search on both sides)
"""

import json
import sys
from datetime import datetime, timezone

import pymongo
from pymongo import DeleteMany, ReplaceOne


def _iso(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        )
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def main(argv):
    mode, uri, database, arg = argv[:4]
    client = pymongo.MongoClient(uri, tz_aware=True)
    db = client[database]
    if mode == "tests":
        cursor = db.load_tests.find({}, {"_id": False, "locustfileContent": False})
        cursor = cursor.sort([("createdAt", -1), ("id", 1)])
        result = list(cursor.limit(int(arg)) if int(arg) else cursor)
    elif mode == "runs":
        bulky = ["finalStats.requestStats", "finalStats.errors", "locustfileContent",
                 "locustfileBundle"]
        cursor = db.load_test_runs.find({}, {"_id": False, **dict.fromkeys(bulky, False)})
        cursor = cursor.sort([("createdAt", -1), ("id", 1)])
        result = list(cursor.limit(int(arg)) if int(arg) else cursor)
    elif mode == "intervals":
        db.load_test_runs.find_one({"id": arg}, {"_id": False})
        cursor = db.metrics_timeseries.find({"loadTestRunId": arg}).sort([("seq", 1)])
        result = sum(1 for _ in cursor)
    elif mode == "prune":
        result = _prune(db, int(arg))
    elif mode == "timeseries":
        projection = {"_id": False, **dict.fromkeys(argv[4].split(","), True)}
        cursor = db.metrics_timeseries.find({"loadTestRunId": arg}, projection)
        result = list(cursor.sort([("seq", 1)]))
    elif mode == "run":
        result = db.load_test_runs.find_one({"id": arg}, {"_id": False})
    elif mode == "trend":
        result = _trend(db, arg, int(argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False, default=_iso) + "\n")
    client.close()


def _prune(db, window):
    """The intervals a prune into windows of `window` would write over, per run: the
    fewest round trips for loadmgr's result (every window written before any original is
    deleted). One deleteMany per run is not cheaper on SecantusDB: a filter leaving the
    windows out (`$nin`) is planned as a collection scan, `$in` of the seqs runs at a
    third of the rate (docs/benchmarks.md, case 13)."""
    done = 0
    collection = db.metrics_timeseries
    for run_id in collection.distinct("loadTestRunId"):
        docs = list(collection.find({"loadTestRunId": run_id}).sort([("seq", 1)]))
        groups = [docs[start:start + window] for start in range(0, len(docs), window)]
        groups = [group for group in groups if len(group) > 1]
        if not groups:
            continue
        # Each window as loadmgr stores it: at its first seq, ending at its last interval
        # (the indexed `timestamp` moves, as loadmgr's does).
        collection.bulk_write([
            ReplaceOne({"loadTestRunId": run_id, "seq": group[0]["seq"]},
                       {**group[0], "mergedThrough": group[-1]["seq"],
                        "timestamp": group[-1]["timestamp"], "windowEnd": group[-1]["windowEnd"]})
            for group in groups
        ])
        collection.bulk_write([
            DeleteMany({"loadTestRunId": run_id,
                        "seq": {"$gt": group[0]["seq"], "$lte": group[-1]["seq"]}})
            for group in groups
        ])
        done += sum(map(len, groups))
    return done


_TREND_FIELDS = ["id", "name", "createdAt", "verdict", "targetUsers", "spawnRate",
                 "durationSeconds", "locustClusterId", "judgedStats.totals", "finalStats.totals"]
_TREND_KEYS = (("p95", "p95ResponseMs"), ("rps", "rps"), ("error_rate", "errorRate"))


def _trend(db, test_name, limit):
    from loadmgr.service.analysis.change_points import Detection, detect_shifts, regimes_of

    test_id = db.load_tests.find_one({"name": test_name}, {"id": True})["id"]
    query = {"loadTestId": test_id, "status": "Finished", "finalStats": {"$ne": None}}
    projection = {"_id": False, **dict.fromkeys(_TREND_FIELDS, True)}
    cursor = db.load_test_runs.find(query, projection)
    docs = list(cursor.sort([("loadTestId", 1), ("createdAt", -1)]).limit(limit))[::-1]
    rows = []
    for metric, key in _TREND_KEYS:
        values = [float((d.get("judgedStats") or d["finalStats"])["totals"][key]) for d in docs]
        shifts = detect_shifts(values, Detection())
        starts = {shift.index: shift for shift in shifts}
        means = [r.mean for r in regimes_of(values, shifts) for _ in range(r.start, r.end)]
        for position, (doc, value) in enumerate(zip(docs, values, strict=True)):
            shift = starts.get(position)
            rows.append({
                "runId": doc["id"], "runName": doc["name"], "createdAt": doc["createdAt"],
                "position": position + 1, "metric": metric, "value": value,
                "targetUsers": doc["targetUsers"], "regimeMean": means[position],
                "startsRegime": shift is not None,
                "meanBefore": shift.before if shift else None,
                "meanAfter": shift.after if shift else None,
            })
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
