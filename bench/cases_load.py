"""Goals 4 and 5: the collector's cost per payload, and load on the `local` cluster."""

from __future__ import annotations

import csv
import gc
import json
import shutil
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.data import START, PayloadStream
from bench.harness import Bench, Row, load_workers, median, ratio_row
from bench.procs import LOOPBACK, REPO, clean_env, free_port, start_demo_target

CASE4 = "4 collector"
CASE5 = "5 local cluster"
POLL_SEC = 2.0  # the simulated poll interval: faster than real time, stamped 2 s apart


def _at(step: int) -> datetime:
    return START + timedelta(seconds=step * POLL_SEC)


def _cpu_ms(work: Callable[[bytes, int], object], raws: list[bytes], warm: int) -> list[float]:
    """Process CPU (this process only: the database server is another) per payload, in ms."""
    samples = []
    for index, raw in enumerate(raws):
        start = time.process_time()
        work(raw, index + 1)
        spent = time.process_time() - start
        if index >= warm:
            samples.append(spent * 1000)
    return samples


def collector(bench: Bench) -> list[Row]:
    """Parse + deltas + store of one 500-entry payload, and memory over a simulated hour."""
    from loadmgr.models import LoadTestRun, RunStatus, Scope
    from loadmgr.store import Store

    size = bench.size
    entries = size.payload_entries
    database = "bench_collector"
    store = Store.connect(bench.uri, database, Scope(), 10_000)
    try:
        store.db.client.drop_database(database)
        store.ensure_indexes()
        run = LoadTestRun(
            loadTestId="bench", targetUsers=50, spawnRate=10.0, durationSeconds=3600,
            status=RunStatus.RUNNING, startedAt=START, heartbeatAt=START,
        )
        store.runs.insert(run)
        warm = 3
        # Payloads as they arrive over HTTP: parsing them is part of the collector's work.
        stream = PayloadStream(entries)
        raws = [stream.raw(step) for step in range(1, size.cpu_payloads + warm + 1)]
        build_save = _cpu_ms(_build_and_save(store, "cpu-build-save"), raws, warm)
        floor = _cpu_ms(_handwritten(store.db["floor_timeseries"], "cpu-floor"), raws, warm)
        interval = _cpu_ms(_collector_interval(bench, store, run), raws, warm)
        rows = [
            _limit_row(f"build+save, {entries} entries (CPU)", build_save, floor),
            _limit_row("  whole collector interval (CPU)", interval, floor,
                       note="+ spool, run heartbeat and lease"),
            _hour(bench, store, run),
        ]
    finally:
        store.close()
    return rows


def _limit_row(measure: str, mine: list[float], floor: list[float], note: str = "") -> Row:
    value = median(mine)
    return Row(
        CASE4, measure, "ms", value, median(floor), "json+deltas+insert_one by hand",
        goal="< 20 ms", passed=value < 20.0, note=note,
        samples={"loadmgr": mine, "floor": floor},
    )


def _build_and_save(store: Any, run_id: str) -> Callable[[bytes, int], object]:
    from loadmgr.locust.stats import SnapshotBuilder

    builder = SnapshotBuilder(run_id, started_at=START, seq=1)

    def work(raw: bytes, step: int) -> None:
        snapshot = builder.build(json.loads(raw), _at(step))
        assert snapshot is not None
        store.metrics.save([snapshot])

    return work


def _handwritten(collection: Any, run_id: str) -> Callable[[bytes, int], object]:
    """The floor: parse, per-request deltas into plain dicts, one insert_one."""
    previous: dict[tuple[str, str], tuple[int, int]] = {}

    def work(raw: bytes, step: int) -> None:
        payload = json.loads(raw)
        rows = []
        for entry in payload["stats"]:
            key = (entry["method"], entry["name"])
            requests, failures = entry["num_requests"], entry["num_failures"]
            before = previous.get(key, (0, 0))
            previous[key] = (requests, failures)
            rows.append({
                "method": key[0],
                "name": key[1],
                "numRequests": requests,
                "numFailures": failures,
                "avgResponseTimeMs": entry["avg_response_time"],
                "p50ResponseMs": entry["median_response_time"],
                "p95ResponseMs": entry["response_time_percentile_0.95"],
                "intervalRequests": requests - before[0],
                "intervalFailures": failures - before[1],
                "requestsPerSec": (requests - before[0]) / POLL_SEC,
            })
        collection.insert_one(
            {"loadTestRunId": run_id, "seq": step, "timestamp": _at(step), "requestStats": rows}
        )

    return work


def _collector_interval(bench: Bench, store: Any, run: Any) -> Callable[[bytes, int], object]:
    """What the collector does per poll after fetching: build, spool, store, heartbeat."""
    from loadmgr.locust.stats import SnapshotBuilder
    from loadmgr.service.collection import Collector, CollectorSettings

    home = bench.tmp / "collector-home"
    collector = Collector(
        store, run, cluster=None, settings=CollectorSettings(interval=int(POLL_SEC)), home=home
    )
    builder = SnapshotBuilder(run.id, started_at=START, seq=1)
    offset = store.metrics.last_seq(run.id)

    from loadmgr.locust.validation import check_stats

    def work(raw: bytes, step: int) -> None:
        snapshot = builder.build(check_stats(json.loads(raw)), _at(offset + step))
        assert snapshot is not None
        collector.writer.keep(snapshot)
        collector._beat(snapshot)

    return work


def _hour(bench: Bench, store: Any, run: Any) -> Row:
    """An hour at a 2-s interval through the collector: traced memory at 10% and at 100%."""
    from loadmgr.models import LoadTestRun, RunStatus

    payloads = bench.size.hour_payloads
    entries = bench.size.payload_entries
    hour_run = LoadTestRun(
        loadTestId="bench", targetUsers=50, spawnRate=10.0, durationSeconds=3600,
        status=RunStatus.RUNNING, startedAt=START, heartbeatAt=START,
    )
    store.runs.insert(hour_run)
    work = _collector_interval(bench, store, hour_run)
    stream = PayloadStream(entries)
    mark = max(1, payloads // 10)
    started = time.perf_counter()
    tracemalloc.start()
    try:
        at_mark = 0
        for step in range(1, payloads + 1):
            work(stream.raw(step), step)
            if step == mark:
                gc.collect()
                at_mark = tracemalloc.get_traced_memory()[0]
        gc.collect()
        at_end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = (at_end - at_mark) / 1_000_000
    stored = store.metrics.count_for_run(hour_run.id)
    return Row(
        CASE4,
        f"  memory growth, {payloads} payloads 10%->100%",
        "MB",
        growth,
        goal="< 1 MB (flat)",
        passed=growth < 1.0 and stored == payloads,
        note=f"traced {at_mark / 1e6:.1f} MB at 10%, {at_end / 1e6:.1f} MB at 100%, "
        f"peak {peak / 1e6:.1f} MB; {stored} stored in {time.perf_counter() - started:.0f} s",
    )


# -- 5 ---------------------------------------------------------------------------------------


def local_cluster(bench: Bench) -> list[Row]:
    """Requests/s of `runs start` on `local` against plain `locust --headless`, same load."""
    workers = load_workers(bench.size)
    target_log = bench.tmp / "demo-target.log"
    target, target_process = start_demo_target(bench.processes, target_log)
    try:
        return _compare_load(bench, target, workers)
    finally:
        bench.processes.stop(target_process)


def _compare_load(bench: Bench, target: str, workers: int) -> list[Row]:
    size = bench.size
    users = size.load_users
    seconds = size.load_seconds
    locustfile = REPO / "examples" / "locustfile.py"
    database = "bench_local"
    env = bench.env(database)
    bench.run(
        [bench.loadmgr, "tests", "create", "--name", "bench-local", "--target-url", target,
         "--locustfile", str(locustfile), "--users", str(users), "--spawn-rate", str(users),
         "--duration", f"{seconds}s", "-q"],
        env,
    ).check("tests create")
    mine: list[tuple[float, float]] = []  # (req/s, whole-process seconds)
    plain: list[tuple[float, float]] = []
    for index in range(max(1, min(bench.repeat, size.load_pairs))):
        plain_first = index % 2 == 0  # alternate, so neither side always runs on a warm box
        if plain_first:
            plain.append(_plain_locust(bench, locustfile, target, users, workers, seconds, index))
        mine.append(_loadmgr_run(bench, env, workers, seconds))
        if not plain_first:
            plain.append(_plain_locust(bench, locustfile, target, users, workers, seconds, index))
    mine_time, plain_time = [t for _, t in mine], [t for _, t in plain]
    # Issue 10: a run ends on time, within 3 s of plain Locust's whole process.
    late = median(mine_time) - median(plain_time)
    return [
        ratio_row(CASE5, f"req/s, {users} users, {workers} workers, {seconds} s",
                  [r for r, _ in mine], [r for r, _ in plain], "locust --headless",
                  at_least=0.9, unit="req/s"),
        Row(CASE5, f"whole process, {seconds}-s run", "s", median(mine_time),
            median(plain_time), "locust --headless", goal="<= +3 s", passed=late <= 3.0,
            note=f"{late:+.1f} s", samples={"loadmgr": mine_time, "floor": plain_time}),
    ]


def _loadmgr_run(
    bench: Bench, env: dict[str, str], workers: int, seconds: int
) -> tuple[float, float]:
    started = time.monotonic()
    result = bench.run(
        # The shortest poll interval: the most the collector can ask of the master.
        [bench.loadmgr, "runs", "start", "bench-local", "--workers", str(workers),
         "--duration", f"{seconds}s", "--interval", "2", "-o", "json"],
        env,
    ).check("runs start")
    elapsed = time.monotonic() - started
    run = json.loads(result.out())
    totals = (run.get("finalStats") or {}).get("totals") or {}
    if not totals.get("requests"):
        raise RuntimeError(f"the loadmgr run recorded no requests: {run.get('error')}")
    return float(totals["rps"]), elapsed


def _plain_locust(
    bench: Bench, locustfile: Path, target: str, users: int, workers: int, seconds: int,
    index: int,
) -> tuple[float, float]:
    """A master and `workers` workers, headless, exactly as loadmgr's local cluster runs:
    its req/s and the seconds from starting it until the master's process ended."""
    workdir = bench.tmp / f"locust-{index}"
    workdir.mkdir(parents=True, exist_ok=True)
    copy = workdir / "locustfile.py"
    shutil.copyfile(locustfile, copy)
    return headless_locust(bench, str(copy), workdir, target, users, workers, seconds)


def headless_locust(
    bench: Bench, files: str, workdir: Path, target: str, users: int, workers: int,
    seconds: int,
) -> tuple[float, float]:
    """`locust --headless` as a master and `workers` workers, run in `workdir` with `-f
    files`: the Aggregated req/s of its CSV, and the seconds until the master's process
    ended."""
    port = free_port()
    env = clean_env(PYTHONUNBUFFERED="1")
    base = [sys.executable, "-m", "locust", "-f", files]
    started_at = time.monotonic()
    master = bench.processes.start(
        [*base, "--headless", "--master", "--master-bind-host", LOOPBACK,
         "--master-bind-port", str(port), "--expect-workers", str(workers),
         "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", target,
         "--csv", str(workdir / "stats"), "--only-summary"],
        workdir / "master.log", cwd=workdir, env=env,
    )
    started = [
        bench.processes.start(
            [*base, "--worker", "--master-host", LOOPBACK, "--master-port", str(port)],
            workdir / f"worker-{n}.log", cwd=workdir, env=env,
        )
        for n in range(workers)
    ]
    try:
        master.wait(timeout=seconds + 120)
        elapsed = time.monotonic() - started_at
    finally:
        for process in [*started, master]:
            bench.processes.stop(process)
    with open(workdir / "stats_stats.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                if not int(row["Request Count"]):
                    raise RuntimeError(f"locust ({workdir.name}) made no requests")
                return float(row["Requests/s"]), elapsed
    raise RuntimeError("locust wrote no Aggregated row")
