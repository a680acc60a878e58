"""Case 11: server metrics (issue 23). Per interval, reading 10 server metrics costs at
most 5 ms of loadmgr's CPU and adds no wait to the interval's write; a run's end is
delayed by at most 1 s by the final range query, side by side with a run that reads none.

Prometheus is stood in for by a loopback HTTP server in this process answering at once
(a vector for an instant query, a matrix with a point at every step for a range query):
what is timed is loadmgr's side. The reader's CPU is the reading thread's own
(`time.thread_time`), so the stand-in's threads are not counted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.harness import Bench, Row, median

CASE11 = "11 server metrics"
METRICS = 10
INTERVAL = 5
END_INTERVALS = {"smoke": 12, "tiny": 60, "full": 360}  # 5 min; half an hour of 5-s intervals
READ_LIVE = 2  # the usual end: all but the last windows were read live


class _Prometheus(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path.endswith("/query_range"):
            start, end, step = (float(params[k]) for k in ("start", "end", "step"))
            count = int(round((end - start) / step)) + 1
            values = [[start + k * step, "1.5"] for k in range(count)]
            data: dict[str, Any] = {
                "resultType": "matrix",
                "result": [{"metric": {}, "values": values}],
            }
        else:
            at = float(params.get("time", time.time()))
            data = {"resultType": "vector", "result": [{"metric": {}, "value": [at, "1.5"]}]}
        body = json.dumps({"status": "success", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` on a free loopback port, on threads of this process; its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _run(store: Any, intervals: int, metrics: int, holes: int | None = None) -> Any:
    """A finished run reading `metrics` server metrics, with `intervals` stored 5-s
    intervals of which the last `holes` (default: all) have no server value yet (the end's
    range query fills them)."""
    from loadmgr.models import LoadTestRun, MetricSnapshot, RunStatus, ServerMetric

    origin = datetime(2027, 1, 1, tzinfo=timezone.utc)
    run = LoadTestRun(
        loadTestId="bench",
        targetUsers=50,
        spawnRate=10.0,
        durationSeconds=intervals * INTERVAL,
        status=RunStatus.FINISHED,
        startedAt=origin,
        finishedAt=origin + timedelta(seconds=intervals * INTERVAL),
        serverMetrics=[
            ServerMetric(name=f"m{i}", query=f"sum(rate(x{i}[$interval]))", source="prom")
            for i in range(metrics)
        ],
        collector={"interval": INTERVAL},
    )
    store.runs.insert(run)
    missing = intervals if holes is None else holes
    read_live = {f"m{i}": 1.5 for i in range(metrics)}
    store.metrics.save(
        [
            MetricSnapshot(
                loadTestRunId=run.id,
                seq=seq,
                intervalSec=INTERVAL,
                timestamp=origin + timedelta(seconds=seq * INTERVAL),
                windowStart=origin + timedelta(seconds=(seq - 1) * INTERVAL),
                windowEnd=origin + timedelta(seconds=seq * INTERVAL),
                server={} if seq > intervals - missing else read_live,
            )
            for seq in range(1, intervals + 1)
        ]
    )
    return store.runs.find_by_id(run.id)


def _interval_cost(bench: Bench, store: Any) -> list[Row]:
    """The reader's CPU for one window of 10 metrics (10 queries, one update), and what
    handing a spooled interval to it costs the collector (a put on a queue)."""
    from loadmgr.models import MetricSnapshot
    from loadmgr.service.server_metrics.live import LiveServerMetrics, Window

    run = _run(store, 1, METRICS)
    reader = LiveServerMetrics(store, run, abort_on_fail=False)
    window = Window(1, (run.startedAt + timedelta(seconds=INTERVAL)).timestamp(), INTERVAL)
    warm = 3
    cpu = []
    for index in range(bench.size.cpu_payloads + warm):
        start = time.thread_time()
        reader._read(window)
        if index >= warm:
            cpu.append((time.thread_time() - start) * 1000)
    stored = store.metrics.collection.find_one({"loadTestRunId": run.id})
    assert len(stored["server"]) == METRICS, stored
    snapshot = MetricSnapshot(
        loadTestRunId=run.id,
        seq=1,
        intervalSec=INTERVAL,
        timestamp=run.startedAt,
        windowEnd=run.startedAt,
    )
    handed = []
    for _ in range(bench.size.cpu_payloads):
        start = time.perf_counter()
        reader.interval(snapshot)  # what the collector's write path does
        handed.append((time.perf_counter() - start) * 1000)
    reader.close(within=10.0)
    value, wait = median(cpu), median(handed)
    return [
        Row(
            CASE11,
            f"reading {METRICS} server metrics, one interval (CPU)",
            "ms",
            value,
            goal="< 5 ms",
            passed=value < 5.0,
            samples={"loadmgr": cpu},
            note="10 instant queries + one update of the interval, the reader's thread",
        ),
        Row(
            CASE11,
            "handing an interval to the reader (the write's wait)",
            "ms",
            wait,
            goal="< 0.1 ms",
            passed=wait < 0.1,
            samples={"loadmgr": handed},
            note="a put on a queue: the interval's write never waits for Prometheus",
        ),
    ]


def _end_delay(bench: Bench, store: Any, holes: int | None) -> Row:
    """The end step's wall time for a run whose last `holes` intervals (None: all) wait
    for the final range query, against the same step for a run reading no server
    metrics."""
    from loadmgr.service.server_metrics.at_end import ServerMetricsAtEnd

    count = END_INTERVALS[bench.size_name]
    step = ServerMetricsAtEnd()
    timings: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(bench.repeat + 1):
        for name, metrics in (("with", METRICS), ("without", 0)):
            run = _run(store, count, metrics, holes)
            start = time.perf_counter()
            step.after_end(store, run, lambda _message: None)
            timings[name].append(time.perf_counter() - start)
            if metrics:
                stats = (store.runs.find_by_id(run.id).serverStats or {}).get("m0", {})
                assert stats.get("intervals") == count, stats
    without = median(timings["without"][1:])
    added = median(timings["with"][1:]) - without
    filled = f"the last {holes}" if holes is not None else "every one"
    return Row(
        CASE11,
        f"the end's delay, {METRICS} metrics, {count} intervals, {filled} to fill",
        "s",
        added,
        goal="< 1 s",
        passed=added < 1.0,
        samples=timings,
        note=f"a range query per metric, one update per interval filled, summaries and "
        f"verdict; the same end without server metrics: {without * 1000:.1f} ms",
    )


def server_metrics(bench: Bench) -> list[Row]:
    from loadmgr.models import Scope, ServerSource
    from loadmgr.store import Store

    database = "bench_server"
    store = Store.connect(bench.uri, database, Scope(), 10_000)
    try:
        store.db.client.drop_database(database)
        store.ensure_indexes()
        with serving(_Prometheus) as url:
            store.sources.insert(ServerSource(id="prom", baseUrl=url))
            return [
                *_interval_cost(bench, store),
                _end_delay(bench, store, READ_LIVE),
                _end_delay(bench, store, None),
            ]
    finally:
        store.close()
