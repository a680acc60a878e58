"""The floors: the same reads as loadmgr's, hand-written with pymongo and json only.

Run as a script (`python bench/floor.py MODE URI DATABASE ARG [FIELDS]`), so that, like
loadmgr, it pays for the interpreter's start-up and its imports. It imports nothing of
loadmgr's and prints what loadmgr prints: a JSON array, indented by 2, dates ISO-8601 UTC.

  tests URI DB LIMIT            load_tests newest first, without locustfileContent
  timeseries URI DB RUN FIELDS  a run's intervals in seq order, only FIELDS (comma-separated)
  run URI DB RUN                one run document
"""

import json
import sys
from datetime import datetime, timezone

import pymongo


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
    elif mode == "timeseries":
        projection = {"_id": False, **dict.fromkeys(argv[4].split(","), True)}
        cursor = db.metrics_timeseries.find({"loadTestRunId": arg}, projection)
        result = list(cursor.sort([("seq", 1)]))
    elif mode == "run":
        result = db.load_test_runs.find_one({"id": arg}, {"_id": False})
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False, default=_iso) + "\n")
    client.close()


if __name__ == "__main__":
    main(sys.argv[1:])
