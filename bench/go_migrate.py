"""Migrating the Go control plane's metrics (issue 12): `db migrate`'s conversion of N Go
intervals against the floor, a raw pymongo read-and-write of the same documents.

    python -m bench.go_migrate [--intervals 100000] [--runs 10] [--repeat 3]

Goal: within 2x of the floor, memory flat (the Python heap's peak during the migration
does not grow with N). Starts its own SecantusDB on a free loopback port; everything it
starts is stopped and its temp dir removed. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

GOAL = 2.0
BATCH = 1000


def go_intervals(runs: int, per_run: int) -> Iterator[dict[str, Any]]:
    """Intervals shaped like the Go service's (tests/data/README.md)."""
    start = datetime(2026, 12, 2, tzinfo=timezone.utc)
    for run in range(runs):
        for n in range(per_run):
            yield {
                "timestamp": start + timedelta(seconds=5 * n),
                "loadTestRunId": f"go-run-{run}",
                "accountId": "acct1",
                "orgId": "org1",
                "projectId": "proj1",
                "envId": "dev",
                "totalRps": 74.1,
                "totalRequests": 100 * n,
                "totalFailures": 10 * n,
                "errorRate": 10.0,
                "currentUsers": 4,
                "p50ResponseMs": 3.0,
                "p95ResponseMs": 6.0,
                "p99ResponseMs": 8.0,
                "minResponseMs": 0.0,
                "maxResponseMs": 0.0,
                "avgResponseMs": 0.0,
                "requestStats": [
                    {"method": "GET", "name": f"/api/{k}", "numRequests": n, "numFailures": 0,
                     "avgResponseTimeMs": 0.0, "minResponseTimeMs": 0.0,
                     "maxResponseTimeMs": 0.0, "p50ResponseMs": 0.0, "p95ResponseMs": 0.0,
                     "requestsPerSec": 12.6}
                    for k in range(3)
                ],
            }


def load(db: Any, runs: int, per_run: int) -> None:
    db.drop_collection("metrics_timeseries")
    batch: list[dict[str, Any]] = []
    for doc in go_intervals(runs, per_run):
        batch.append(doc)
        if len(batch) >= BATCH:
            db.metrics_timeseries.insert_many(batch)
            batch = []
    if batch:
        db.metrics_timeseries.insert_many(batch)
    db.metrics_timeseries.create_index(
        [("loadTestRunId", 1), ("timestamp", 1)], name="loadtestrun_timestamp_idx"
    )


def floor(db: Any) -> int:
    """Read every interval of every run in time order and write each back with a seq."""
    from pymongo import ReplaceOne

    written = 0
    for run_id in db.metrics_timeseries.distinct("loadTestRunId"):
        cursor = db.metrics_timeseries.find({"loadTestRunId": run_id}).sort("timestamp", 1)
        batch = []
        for seq, doc in enumerate(cursor.batch_size(BATCH), 1):
            doc["seq"] = seq
            batch.append(ReplaceOne({"_id": doc["_id"]}, doc))
            if len(batch) >= BATCH:
                written += db.metrics_timeseries.bulk_write(batch, ordered=False).modified_count
                batch = []
        if batch:
            written += db.metrics_timeseries.bulk_write(batch, ordered=False).modified_count
    return written


def migrate(uri: str, database: str) -> int:
    from loadmgr.models import Scope
    from loadmgr.service.migration.go_import import import_go_documents
    from loadmgr.store import Store

    store = Store.connect(uri, database, Scope(), 10_000)
    try:
        return import_go_documents(store).converted
    finally:
        store.close()


def measure(uri: str, runs: int, per_run: int, repeat: int) -> dict[str, Any]:
    """Median seconds of each side, and the migration's Python heap peak in MB."""
    import pymongo

    client: Any = pymongo.MongoClient(uri, tz_aware=True)
    database = "bench_go_migrate"
    mine: list[float] = []
    base: list[float] = []
    peak = 0.0
    try:
        for _ in range(repeat):
            load(client[database], runs, per_run)
            began = time.perf_counter()
            if floor(client[database]) != runs * per_run:
                raise RuntimeError("the floor did not write every interval")
            base.append(time.perf_counter() - began)
            load(client[database], runs, per_run)
            tracemalloc.start()
            began = time.perf_counter()
            if migrate(uri, database) != runs * per_run:
                raise RuntimeError("the migration did not convert every interval")
            mine.append(time.perf_counter() - began)
            peak = max(peak, tracemalloc.get_traced_memory()[1] / 1_000_000)
            tracemalloc.stop()
    finally:
        client.drop_database(database)
        client.close()
    # tracemalloc slows the migration it watches: the ratio is, if anything, pessimistic.
    return {
        "intervals": runs * per_run,
        "loadmgr": statistics.median(mine),
        "floor": statistics.median(base),
        "ratio": statistics.median(mine) / statistics.median(base),
        "peakMB": peak,
    }


def main(argv: list[str] | None = None) -> int:
    from bench.procs import Processes, start_wire_server

    parser = argparse.ArgumentParser(prog="python -m bench.go_migrate")
    parser.add_argument("--intervals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="loadmgr-bench-go-"))
    processes = Processes()
    try:
        uri = start_wire_server(processes, tmp / "data")
        result = measure(uri, args.runs, max(1, args.intervals // args.runs), args.repeat)
    finally:
        processes.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    verdict = "ok" if result["ratio"] <= GOAL else "over the goal"
    print(
        f"db migrate of {result['intervals']} Go intervals: {result['loadmgr']:.2f} s, "
        f"floor (raw read and write) {result['floor']:.2f} s, {result['ratio']:.2f}x "
        f"(goal <= {GOAL:g}x: {verdict}); Python heap peak {result['peakMB']:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
