"""Synthetic tests, runs and intervals, stored straight into a database (no Locust needed).

The shapes are the collector's: `MetricSnapshot` documents with seq 1, 2, 3… and a run
whose `finalStats` has the shape `loadmgr.locust.stats.final_stats` builds.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from loadmgr.models import LoadTest, LoadTestRun, MetricSnapshot, RequestStats, RunStatus

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
REQUESTS = (("GET", "/api/items"), ("POST", "/api/orders"))


def make_test(name: str = "checkout", **fields: Any) -> LoadTest:
    return LoadTest.model_validate(
        {"name": name, "targetUrl": "http://127.0.0.1:8089", "createdBy": "tester", **fields}
    )


def final_stats(
    *,
    requests: int = 10_000,
    failures: int = 100,
    rps: float = 100.0,
    avg: float = 50.0,
    p50: float = 40.0,
    p90: float | None = 90.0,
    p95: float = 120.0,
    p99: float = 250.0,
    max_ms: float = 900.0,
    per_request: list[dict[str, Any]] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A run's `finalStats`; the requests split the totals evenly unless given."""
    if per_request is None:
        share = len(REQUESTS)
        per_request = [
            {
                "method": method,
                "name": name,
                "numRequests": requests // share,
                "numFailures": failures // share,
                "errorRate": (failures // share) / (requests // share) if requests else 0.0,
                "avgResponseTimeMs": avg,
                "minResponseTimeMs": 2.0,
                "maxResponseTimeMs": max_ms,
                "p50ResponseMs": p50,
                "p90ResponseMs": p90,
                "p95ResponseMs": p95,
                "p99ResponseMs": p99,
                "requestsPerSec": rps / share,
                "failuresPerSec": 0.1,
                "avgContentLength": 512.0,
            }
            for method, name in REQUESTS
        ]
    return {
        "state": "stopped",
        "userCount": 0,
        "workerCount": None,
        "totals": {
            "requests": requests,
            "failures": failures,
            "errorRate": failures / requests if requests else 0.0,
            "rps": rps,
            "failuresPerSec": failures / 100.0,
            "avgResponseMs": avg,
            "minResponseMs": 2.0,
            "maxResponseMs": max_ms,
            "p50ResponseMs": p50,
            "p90ResponseMs": p90,
            "p95ResponseMs": p95,
            "p99ResponseMs": p99,
            "avgContentLength": 512.0,
        },
        "requestStats": per_request,
        "errors": errors
        if errors is not None
        else [
            {"method": "POST", "name": "/api/orders", "error": "HTTPError(500)", "occurrences": 70},
            {"method": "GET", "name": "/api/items", "error": "ConnectionError", "occurrences": 30},
        ],
    }


def make_run(test: LoadTest, *, final: dict[str, Any] | None = None, **fields: Any) -> LoadTestRun:
    """A finished run of `test` (override `status`, `finalStats`… through `fields`)."""
    document: dict[str, Any] = {
        "loadTestId": test.id,
        "name": f"{test.name} nightly",
        "tenantId": test.tenantId,
        "envId": test.envId,
        "targetUsers": 20,
        "spawnRate": 5.0,
        "durationSeconds": 600,
        "status": RunStatus.FINISHED,
        "startedAt": START,
        "finishedAt": START + timedelta(seconds=600),
        "stopReason": "duration",
        "targetUrl": test.targetUrl,
        "finalStats": final if final is not None else final_stats(),
        "createdBy": "tester",
        **fields,
    }
    return LoadTestRun.model_validate(document)


def snapshots(
    run: LoadTestRun,
    count: int,
    *,
    interval: float = 5.0,
    requests_per_interval: int = 500,
    failures_every: int = 10,
    with_requests: bool = True,
) -> list[MetricSnapshot]:
    """`count` intervals of `run`: users ramp to the target, p95 is 100 + seq % 50."""
    made = []
    total_requests = total_failures = 0
    for seq in range(1, count + 1):
        failures = 1 if seq % failures_every == 0 else 0
        total_requests += requests_per_interval
        total_failures += failures
        stats = []
        if with_requests:
            half = requests_per_interval // 2
            stats = [
                RequestStats(
                    method=method,
                    name=name,
                    numRequests=half * seq,
                    numFailures=total_failures if index else 0,
                    avgResponseTimeMs=40.0 + index,
                    minResponseTimeMs=2.0,
                    maxResponseTimeMs=300.0,
                    p50ResponseMs=40.0,
                    p95ResponseMs=100.0 + index,
                    p99ResponseMs=200.0,
                    requestsPerSec=half / interval,
                    intervalRequests=half,
                    intervalFailures=failures if index else 0,
                )
                for index, (method, name) in enumerate(REQUESTS)
            ]
        made.append(
            MetricSnapshot(
                loadTestRunId=run.id,
                timestamp=START + timedelta(seconds=interval * seq),
                tenantId=run.tenantId,
                envId=run.envId,
                seq=seq,
                intervalSec=interval,
                totalRPS=requests_per_interval / interval,
                failuresPerSec=failures / interval,
                intervalRequests=requests_per_interval,
                intervalFailures=failures,
                errorRate=failures / requests_per_interval,
                avgResponseMs=45.0,
                totalRequests=total_requests,
                totalFailures=total_failures,
                p50ResponseMs=None if seq == 3 else 40.0 + seq % 7,
                p95ResponseMs=100.0 + seq % 50,
                p99ResponseMs=200.0,
                minResponseMs=2.0,
                maxResponseMs=300.0,
                currentUsers=min(run.targetUsers, seq),
                state="running",
                requestStats=stats,
                metadata={"final": True} if seq == count else {},
            )
        )
    return made


def store_all(
    db: Any,
    test: LoadTest | None = None,
    runs: list[LoadTestRun] | None = None,
    intervals: list[MetricSnapshot] | None = None,
) -> None:
    """Insert documents as the collector would have (pymongo or mongomock database), in a
    database at this loadmgr's schema (so no command migrates them)."""
    from loadmgr.service.migration.schema import SCHEMA_VERSION

    db["loadmgr_meta"].update_one(
        {"_id": "schema"}, {"$max": {"version": SCHEMA_VERSION}}, upsert=True
    )
    if test is not None:
        db["load_tests"].insert_one(test.to_document())
    for run in runs or ():
        db["load_test_runs"].insert_one(run.model_dump(mode="python"))
    if intervals:
        db["metrics_timeseries"].insert_many([s.model_dump(mode="python") for s in intervals])


def plugin_snapshots(
    run: LoadTestRun, count: int, *, interval: int = 2, slow_every: int = 4
) -> list[MetricSnapshot]:
    """`count` intervals as the loadmgr plugin stores them, each with its histograms.

    GET /api/items answers in 20-40 ms; POST /api/orders is bimodal: 30 ms, and 800 ms
    for a tenth of its requests in every `slow_every`-th interval. Percentiles are the
    histograms' own (as the collector computes them); every 5th interval has 2 failures.
    """
    from loadmgr.models.histogram import encode, merged, summary

    made = []
    total_requests = total_failures = 0
    for seq in range(1, count + 1):
        shapes = {
            REQUESTS[0]: {20: 30, 30: 50, 40: 20},
            REQUESTS[1]: {30: 90, 800: 10} if seq % slow_every == 0 else {30: 95, 50: 5},
        }
        failures = 2 if seq % 5 == 0 else 0
        stats = []
        for index, ((method, name), histogram) in enumerate(shapes.items()):
            numbers = summary(histogram)
            requests = sum(histogram.values())
            stats.append(
                RequestStats(
                    method=method,
                    name=name,
                    numRequests=requests * seq,
                    numFailures=0,
                    avgResponseTimeMs=numbers["avg"] or 0.0,
                    minResponseTimeMs=numbers["min"] or 0.0,
                    maxResponseTimeMs=numbers["max"] or 0.0,
                    p50ResponseMs=numbers["p50"],
                    p95ResponseMs=numbers["p95"],
                    p99ResponseMs=numbers["p99"],
                    requestsPerSec=requests / interval,
                    intervalRequests=requests,
                    intervalFailures=failures if index else 0,
                    hist=encode(histogram),
                )
            )
        whole = merged(shapes.values())
        numbers = summary(whole)
        requests = sum(whole.values())
        total_requests += requests
        total_failures += failures
        end = START + timedelta(seconds=interval * seq)
        made.append(
            MetricSnapshot(
                loadTestRunId=run.id,
                timestamp=end,
                windowStart=end - timedelta(seconds=interval),
                windowEnd=end,
                percentileWindow="interval",
                tenantId=run.tenantId,
                envId=run.envId,
                seq=seq,
                intervalSec=interval,
                totalRPS=requests / interval,
                failuresPerSec=failures / interval,
                intervalRequests=requests,
                intervalFailures=failures,
                errorRate=failures / requests,
                totalRequests=total_requests,
                totalFailures=total_failures,
                avgResponseMs=numbers["avg"],
                p50ResponseMs=numbers["p50"],
                p95ResponseMs=numbers["p95"],
                p99ResponseMs=numbers["p99"],
                minResponseMs=numbers["min"],
                maxResponseMs=numbers["max"],
                currentUsers=min(run.targetUsers, seq),
                state="running",
                requestStats=stats,
                hist=encode(whole),
            )
        )
    return made


def steady_intervals(
    run: LoadTestRun, count: int = 12, *, noise: float = 0.02, seed: int = 0
) -> list[MetricSnapshot]:
    """`count` steady intervals of `run` whose every number is its final stats' within
    ±`noise` (uniform, seeded), so a comparison's significance test has samples that say
    what its final numbers say. Server metrics: each of `serverStats`' means likewise."""
    import random

    rng = random.Random(seed)
    final = run.finalStats or {}
    totals = final.get("totals") or {}

    def near(value: Any) -> float | None:
        if not isinstance(value, int | float):
            return None
        return float(value) * (1 + rng.uniform(-noise, noise))

    def requests_of(item: dict[str, Any], requests: str, failures: str) -> tuple[int, int]:
        made, rate = 1000, item.get("errorRate")
        if not isinstance(rate, int | float):
            rate = item[failures] / item[requests] if item.get(requests) else 0.0
        return made, round(made * rate * (1 + rng.uniform(-noise, noise)))

    made = []
    for seq in range(1, count + 1):
        stats = []
        for item in final.get("requestStats") or ():
            asked, failed = requests_of(item, "numRequests", "numFailures")
            stats.append(
                RequestStats(
                    method=item.get("method", ""),
                    name=item.get("name", ""),
                    avgResponseTimeMs=near(item.get("avgResponseTimeMs")) or 0.0,
                    minResponseTimeMs=near(item.get("minResponseTimeMs")) or 0.0,
                    maxResponseTimeMs=near(item.get("maxResponseTimeMs")) or 0.0,
                    p50ResponseMs=near(item.get("p50ResponseMs")),
                    p90ResponseMs=near(item.get("p90ResponseMs")),
                    p95ResponseMs=near(item.get("p95ResponseMs")),
                    p99ResponseMs=near(item.get("p99ResponseMs")),
                    requestsPerSec=near(item.get("requestsPerSec")) or 0.0,
                    intervalRequests=asked,
                    intervalFailures=failed,
                )
            )
        asked, failed = requests_of(totals, "requests", "failures")
        server = {
            name: value
            for name, summary in (run.serverStats or {}).items()
            if isinstance(summary, dict) and (value := near(summary.get("avg"))) is not None
        }
        made.append(
            MetricSnapshot(
                loadTestRunId=run.id,
                timestamp=START + timedelta(seconds=5 * seq),
                tenantId=run.tenantId,
                envId=run.envId,
                seq=seq,
                intervalSec=5.0,
                totalRPS=near(totals.get("rps")) or 0.0,
                intervalRequests=asked,
                intervalFailures=failed,
                errorRate=failed / asked,
                avgResponseMs=near(totals.get("avgResponseMs")),
                p50ResponseMs=near(totals.get("p50ResponseMs")),
                p90ResponseMs=near(totals.get("p90ResponseMs")),
                p95ResponseMs=near(totals.get("p95ResponseMs")),
                p99ResponseMs=near(totals.get("p99ResponseMs")),
                minResponseMs=near(totals.get("minResponseMs")),
                maxResponseMs=near(totals.get("maxResponseMs")),
                currentUsers=run.targetUsers,
                state="running",
                requestStats=stats,
                server=server,
            )
        )
    return made


def json_z(value: Any) -> bytes:
    """zlib over `value`'s JSON: how encodings 1 and 2 stored a compact field (loadmgr reads
    them and writes encoding 3)."""
    import json
    import zlib

    return zlib.compress(json.dumps(value, separators=(",", ":"), allow_nan=True).encode(), 4)


def in_encoding_1(plain: dict[str, Any]) -> dict[str, Any]:
    """A plain interval as the first compact form stored it (`encoding: 1`, docs/storage.md:
    `histZ` as JSON, `requestStatsZ` one JSON object), which loadmgr no longer writes but
    still reads and migrates."""
    from loadmgr.models.documents import compact as form

    doc = in_encoding_2(plain)
    if form.HIST_FIELD in doc:
        doc[form.HIST_FIELD] = json_z(form._unpacked_packed_steps("", doc[form.HIST_FIELD]))
    return {**doc, form.ENCODING_FIELD: form.JSON_ENCODING}


def in_encoding_2(plain: dict[str, Any]) -> dict[str, Any]:
    """A plain interval as the second compact form stored it (`encoding: 2`: `histZ` packed
    integers, `requestStatsZ` one JSON object `{"columns": …}`), read and migrated."""
    from loadmgr.models.documents import compact as form

    doc = form.compact(dict(plain))
    if form.REQUESTS_FIELD in doc:
        columns = form._columns(plain["requestStats"])
        doc[form.REQUESTS_FIELD] = json_z({"columns": columns})
    return {**doc, form.ENCODING_FIELD: form.PACKED_ENCODING}
