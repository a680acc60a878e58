"""Case 12: a year of history kept in bounds (issue 26): `db prune` merging a generated
history of hour-long runs (5-s plugin intervals, 20 request names, histograms) into 1-minute
windows, and what `db status` says one run-hour takes before and after.

At the full size: 100 runs × 720 intervals (72,000). The issue's 1,000 runs (720,000
intervals) is more than the embedded server takes in one session (docs/benchmarks.md).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bench.data import START, insert_batched, run_document, test_documents
from bench.harness import Bench, Row

CASE12 = "12 history"
RUNS = {"smoke": 2, "tiny": 3, "full": 100}
INTERVALS = {"smoke": 24, "tiny": 36, "full": 720}  # 2 or 3 minutes, or an hour, at 5 s
NAMES = 20
DATABASE = "bench_history"


def _template() -> dict[str, Any]:
    """One plugin interval of 20 names, each with a histogram of the plugin's shape."""
    hist = "12:40,14:80,17:120,21:90,28:40,45:12,120:3,900:1"
    items = [
        {"method": "GET", "name": f"/api/item/{n}", "numRequests": 0, "numFailures": 0,
         "intervalRequests": 386, "intervalFailures": 1, "requestsPerSec": 77.2,
         "avgResponseTimeMs": 21.0, "minResponseTimeMs": 12.0, "maxResponseTimeMs": 900.0,
         "p50ResponseMs": 17.0, "p95ResponseMs": 45.0, "p99ResponseMs": 120.0, "hist": hist}
        for n in range(NAMES)
    ]
    return {"percentileWindow": "interval", "intervalSec": 5.0, "intervalRequests": 386 * NAMES,
            "intervalFailures": NAMES, "currentUsers": 50, "state": "running",
            "hist": hist, "requestStats": items}


def _store_history(bench: Bench) -> int:
    runs, intervals = RUNS[bench.size_name], INTERVALS[bench.size_name]
    test = next(test_documents(1, prefix="history"))
    template = _template()
    client = bench.client()
    try:
        db = client[DATABASE]
        for name in ("load_tests", "load_test_runs", "metrics_timeseries", "retention_policies"):
            db[name].drop()
        db.load_tests.insert_one(dict(test))
        run_docs = []
        for night in range(runs):
            run = run_document(test["id"], intervals, NAMES, every_sec=5.0)
            run["id"] = f"history-run-{night:05d}"
            run["finishedAt"] = START + timedelta(days=night, hours=1)
            run_docs.append(run)
        db.load_test_runs.insert_many(run_docs)

        def docs() -> Any:
            for run in run_docs:
                for seq in range(1, intervals + 1):
                    end = run["finishedAt"] - timedelta(seconds=5 * (intervals - seq))
                    yield {**template, "loadTestRunId": run["id"], "seq": seq,
                           "timestamp": end, "windowStart": end - timedelta(seconds=5),
                           "windowEnd": end}

        return insert_batched(db.metrics_timeseries, docs())
    finally:
        client.close()


def _space(bench: Bench, env: dict[str, str]) -> int | None:
    status = bench.run([bench.loadmgr, "db", "status", "-o", "json"], env)
    return (json.loads(status.out()).get("space") or {}).get("bytesPerRunHour")


def history(bench: Bench) -> list[Row]:
    from bench.cases_cli import _ensure_indexes

    stored = _store_history(bench)
    _ensure_indexes(bench, DATABASE)
    env = bench.env(DATABASE)
    before = _space(bench, env)
    policy = [bench.loadmgr, "db", "retention", "set", "--keep-detail", "30d",
              "--downsample", "1m"]
    if bench.run(policy, env).returncode != 0:
        raise RuntimeError("db retention set failed")
    pruned = bench.run([bench.loadmgr, "db", "prune", "-o", "json"], env, rss=True)
    if pruned.returncode != 0:
        raise RuntimeError(f"db prune failed: {pruned.stderr.read_text()[-500:]}")
    done = json.loads(pruned.out())["retention"]
    # The prune's own rate (its work, without the process's start-up).
    rate = float(done.get("intervalsPerSec") or 0.0)
    after = _space(bench, env)
    return [
        Row(CASE12, f"db prune of {stored:,} intervals into 1-m windows", "intervals/s", rate,
            goal=">= 5,000/s", passed=rate >= 5_000,
            note=f"{pruned.seconds:.1f} s in all, peak RSS {pruned.max_rss / 2**20:.0f} MiB"),
        Row(CASE12, "bytes per run-hour (20 names), before → after", "bytes",
            float(after or 0), note=f"before {before:,}" if before else ""),
    ]
