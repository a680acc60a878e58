"""The benchmark's data, shaped like loadmgr's own: built with its models, so it is valid.

Tests are `LoadTest` documents; a run's intervals are what the collector itself would
store, made by `SnapshotBuilder` from synthetic `/stats/requests` payloads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from loadmgr.locust.stats import SnapshotBuilder, final_stats
from loadmgr.models import LoadTest, LoadTestRun, RunStatus, StopReason

START = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
TARGET = "https://staging.example.com"
BATCH = 1000

# A realistic locustfile: stored with each test, and left out of `tests list`.
LOCUSTFILE = (
    '"""Checkout journey."""\n\nfrom locust import HttpUser, between, task\n\n\n'
    + "".join(
        f"class Journey{i}(HttpUser):\n    wait_time = between(1, 3)\n\n"
        f"    @task\n    def step(self) -> None:\n        self.client.get('/api/step/{i}')\n\n\n"
        for i in range(12)
    )
)


def test_documents(count: int, prefix: str = "bench") -> Iterator[dict[str, Any]]:
    """`count` load_tests documents, one created a minute, as `tests create` stores them."""
    sha = hashlib.sha256(LOCUSTFILE.encode()).hexdigest()
    for index in range(count):
        created = START + timedelta(minutes=index)
        test = LoadTest(
            name=f"{prefix}-test-{index:05d}",
            description=f"Checkout API under load, variant {index}.",
            tags=["bench", f"team-{index % 7}", "nightly" if index % 2 else "weekly"],
            targetUrl=f"{TARGET}/v{index % 3}",
            locustfile="locustfile.py",
            locustfileContent=LOCUSTFILE,
            locustfileSha256=sha,
            defaultUsers=10 + index % 90,
            defaultSpawnRate=5.0,
            defaultDurationSec=300,
            maxDurationSec=3600,
            thresholds=["p95<500ms", "error_rate<1%"],
            metadata={"owner": f"team-{index % 7}", "service": "checkout"},
            createdAt=created,
            createdBy="bench",
            updatedAt=created,
            updatedBy="bench",
        )
        yield test.to_document()


def stats_payload(entries: int, step: int, users: int = 50) -> dict[str, Any]:
    """A `/stats/requests` payload (docs/locust-api.md, "GET /stats/requests") `step` polls
    into a steady run."""
    stats = []
    total_requests = total_failures = 0
    for index in range(entries):
        requests = step * (20 + index % 13)
        failures = step * (index % 5 == 0)
        total_requests += requests
        total_failures += failures
        stats.append(_entry("GET", f"/api/items/{index:04d}", requests, failures, 12.0 + index % 9))
    stats.sort(key=lambda entry: (entry["name"], entry["method"]))
    stats.append(_entry("", "Aggregated", total_requests, total_failures, 15.5))
    return {
        "current_fail_per_sec": 1.5,
        "current_response_time_percentiles": {
            "response_time_percentile_0.5": 12,
            "response_time_percentile_0.95": 48,
        },
        "current_rps": 420.5,
        "errors": [],
        "fail_ratio": total_failures / total_requests if total_requests else 0.0,
        "state": "running",
        "stats": stats,
        "total_fail_per_sec": 1.4,
        "total_rps": 418.2,
        "user_count": users,
        "worker_count": 2,
        "workers": [
            {"cpu_usage": 8.2, "id": f"worker_{n}", "memory_usage": 56692736,
             "state": "running", "user_count": users // 2}
            for n in range(2)
        ],
    }


class PayloadStream:
    """Successive raw payloads of one run, made by updating one payload's counters in place.

    Cheaper than building each payload anew, so a simulated hour measures the collector,
    not the generator.
    """

    def __init__(self, entries: int, users: int = 50) -> None:
        self.payload = stats_payload(entries, 1, users)
        self._rates = [(e["num_requests"], e["num_failures"]) for e in self.payload["stats"]]

    def raw(self, step: int) -> bytes:
        stats = self.payload["stats"]
        for entry, (requests, failures) in zip(stats, self._rates, strict=True):
            entry["num_requests"] = requests * step
            entry["num_failures"] = failures * step
        return json.dumps(self.payload).encode()


def _entry(method: str, name: str, requests: int, failures: int, avg: float) -> dict[str, Any]:
    return {
        "avg_content_length": 512.0,
        "avg_response_time": avg,
        "current_fail_per_sec": 0.1 * bool(failures),
        "current_rps": 10.5,
        "max_response_time": 250.0,
        "median_response_time": 11,
        "method": method,
        "min_response_time": 2.0,
        "name": name,
        "num_failures": failures,
        "num_requests": requests,
        "response_time_percentile_0.95": 45,
        "response_time_percentile_0.99": 90,
        "total_fail_per_sec": 0.1 * bool(failures),
        "total_rps": 10.4,
    }


def interval_documents(
    run_id: str, intervals: int, requests: int, every_sec: float = 2.0
) -> Iterator[dict[str, Any]]:
    """A run's metrics_timeseries documents, built as the collector builds them."""
    builder = SnapshotBuilder(run_id, started_at=START, seq=1)
    for step in range(1, intervals + 1):
        payload = stats_payload(requests, step)
        snapshot = builder.build(payload, START + timedelta(seconds=step * every_sec))
        assert snapshot is not None
        yield snapshot.model_dump(mode="python")


def run_document(
    test_id: str, intervals: int, requests: int, every_sec: float = 2.0
) -> dict[str, Any]:
    """A finished run of `intervals` polls, with its final stats as the collector stores them."""
    finished = START + timedelta(seconds=intervals * every_sec)
    final = final_stats(stats_payload(requests, intervals))
    run = LoadTestRun(
        loadTestId=test_id,
        name=f"bench run of {intervals} intervals",
        targetUsers=50,
        spawnRate=10.0,
        durationSeconds=max(1, int(intervals * every_sec)),
        status=RunStatus.FINISHED,
        startedAt=START,
        finishedAt=finished,
        stopReason=StopReason.DURATION,
        targetUrl=TARGET,
        finalStats=final,
        lastMetrics={"totalRequests": final["totals"]["requests"]},
        collector={"interval": every_sec},
        createdAt=START,
        createdBy="bench",
        updatedAt=finished,
        updatedBy="bench",
    )
    return run.model_dump(mode="python")


def insert_batched(collection: Any, documents: Iterator[dict[str, Any]]) -> int:
    """insert_many in batches; returns how many were inserted."""
    batch: list[dict[str, Any]] = []
    count = 0
    for document in documents:
        batch.append(document)
        if len(batch) >= BATCH:
            collection.insert_many(batch, ordered=False)
            count += len(batch)
            batch = []
    if batch:
        collection.insert_many(batch, ordered=False)
        count += len(batch)
    return count
