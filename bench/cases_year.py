"""Case 13: the read paths at a year of history (issue 26, "Reads that scale").

A generated history: one test with `finished` finished runs spread over a year, the newest
`runs` of them an hour long at 5-s plugin intervals (20 request names, histograms). Each
interval is a compact copy of one (the store's `compact()`), only ids and times changed,
bulk-inserted. Measured side by side with raw pymongo floors (bench/floor.py): `runs list`,
`tests list`, `tests trend --last 1000`, `metrics show` and `metrics report` of one
hour-long run; the peak RSS of `metrics report` at this history and at a tenth of it
(`small_runs`); `db prune` of the history (on a copy, against the floor's writes).

The history is generated once per size and kept between bench runs in a SecantusDB data
folder under LOADMGR_BENCH_CACHE (default `.bench-cache/` in the repository): year-SIZE/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.cases_cli import _ensure_indexes, _json_list
from bench.cases_history import NAMES, _template
from bench.data import insert_batched, run_document, test_documents
from bench.harness import Bench, Row, process_row
from bench.procs import REPO, Processes, clean_env, wire_server
from loadmgr.models.documents.compact import ENCODING

CASE13 = "13 year of history"
# Bump when what is generated changes: every cached history is generated again (as it is
# when the store's compact form changes: the history is stored as loadmgr writes it now).
GENERATOR = f"2, encoding {ENCODING}"
BIG, SMALL = "bench_year", "bench_year_small"
TEST_NAME = "year-test-00000"


@dataclass(frozen=True)
class YearSize:
    runs: int  # hour-long runs with their intervals
    small_runs: int  # the same, in the history a tenth the size (peak RSS compared)
    intervals: int  # per run (720: an hour at 5 s)
    finished: int  # finished runs of the test (the trend's history)


YEAR = {
    "smoke": YearSize(runs=2, small_runs=1, intervals=12, finished=20),
    "tiny": YearSize(runs=20, small_runs=2, intervals=720, finished=1_000),
    "full": YearSize(runs=1_000, small_runs=100, intervals=720, finished=10_000),
}


def cache_folder(size_name: str) -> Path:
    root = Path(os.environ.get("LOADMGR_BENCH_CACHE") or REPO / ".bench-cache")
    return root / f"year-{size_name}"


def _runs(test_id: str, size: YearSize, finished: int) -> list[dict[str, Any]]:
    """`finished` finished runs of the test, one every year/`finished`, oldest first, the
    newest 40 days old (older than the prune's `--keep-detail 30d`)."""
    template = run_document(test_id, size.intervals, NAMES, every_sec=5.0)
    every = timedelta(days=365) / max(1, finished)
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=40) - every * (finished - 1)
    runs = []
    for index in range(finished):
        created = first + every * index
        runs.append({**template, "id": f"year-run-{index:06d}", "createdAt": created,
                     "startedAt": created, "finishedAt": created + timedelta(hours=1),
                     "updatedAt": created + timedelta(hours=1)})
    return runs


def _intervals(runs: list[dict[str, Any]], intervals: int) -> Iterator[dict[str, Any]]:
    from loadmgr.models.documents.compact import compact

    one = compact(_template())
    for run in runs:
        for seq in range(1, intervals + 1):
            end = run["startedAt"] + timedelta(seconds=5 * seq)
            yield {**one, "loadTestRunId": run["id"], "seq": seq, "timestamp": end,
                   "windowStart": end - timedelta(seconds=5), "windowEnd": end}


def _generate(uri: str, size: YearSize) -> int:
    """Both histories (the whole and a tenth); the intervals stored in the whole."""
    import pymongo

    client: Any = pymongo.MongoClient(uri, tz_aware=True)
    stored = 0
    try:
        for database, with_intervals, finished in ((BIG, size.runs, size.finished),
                                                   (SMALL, size.small_runs, size.small_runs)):
            client.drop_database(database)
            db = client[database]
            test = next(test_documents(1, prefix="year"))
            db.load_tests.insert_one(dict(test))
            runs = _runs(test["id"], size, finished)
            insert_batched(db.load_test_runs, iter(runs))
            count = insert_batched(db.metrics_timeseries,
                                   _intervals(runs[-with_intervals:], size.intervals))
            stored = stored or count
    finally:
        client.close()
    return stored


def _stop(processes: Processes, process: subprocess.Popen[bytes]) -> None:
    """Stop a server whose data is kept: SIGTERM to its main thread, the one SecantusDB
    stops cleanly on (then the group's stop, SIGKILL at worst)."""
    from loadmgr.store.embedded import signal_main_thread

    if process.poll() is None:
        signal_main_thread(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    processes.stop(process)


def year(bench: Bench) -> list[Row]:
    size = YEAR[bench.size_name]
    folder = cache_folder(bench.size_name)
    marker = folder / "ready.json"
    wanted = {"generator": GENERATOR, **asdict(size)}
    cached = marker.exists() and json.loads(marker.read_text()) == wanted
    if not cached:
        shutil.rmtree(folder, ignore_errors=True)
    uri, server = wire_server(bench.processes, folder / "data")
    try:
        started = time.perf_counter()
        if not cached:
            _generate(uri, size)
            for database in (BIG, SMALL):
                _ensure_indexes(bench, database, uri)
            marker.write_text(json.dumps(wanted))
        made = f"cached {folder.name}" if cached else \
            f"generated in {time.perf_counter() - started:.0f} s"
        rows = _reads(bench, uri, size)
        rows.append(_rss(bench, uri, size))
    finally:
        _stop(bench.processes, server)
    rows.extend(_prune(bench, folder / "data", size))
    rows[0].note = f"{rows[0].note}; history {made}".lstrip("; ")
    return rows


def _env(bench: Bench, uri: str, database: str) -> dict[str, str]:
    """loadmgr's environment on this case's own server (not the bench's)."""
    return {**bench.env(database), "LOADMGR_MONGO_URI": uri}


def _run_id(size: YearSize, small: bool = False) -> str:
    """The newest run: an hour long, with its intervals."""
    return f"year-run-{(size.small_runs if small else size.finished) - 1:06d}"


def _reads(bench: Bench, uri: str, size: YearSize) -> list[Row]:
    env = _env(bench, uri, BIG)
    floor = [bench.python, bench.floor_script]
    run = _run_id(size)
    last = min(1_000, size.finished)
    listed = min(50, size.finished)
    pairs = [
        (f"runs list -o json ({listed})", [bench.loadmgr, "runs", "list", "-o", "json"],
         [*floor, "runs", uri, BIG, str(listed)], "pymongo find+dumps", _json_list(listed)),
        ("tests list -o json", [bench.loadmgr, "tests", "list", "-o", "json"],
         [*floor, "tests", uri, BIG, "0"], "pymongo find+dumps", _json_list(1)),
        (f"tests trend --last {last} -o json",
         [bench.loadmgr, "tests", "trend", TEST_NAME, "--last", str(last), "-o", "json"],
         [*floor, "trend", uri, BIG, TEST_NAME, str(last)], "find + the same search", None),
        ("metrics show (an hour-long run)", [bench.loadmgr, "metrics", "show", run, "-o", "json"],
         [*floor, "run", uri, BIG, run], "find_one(run)", None),
        ("metrics report --html (an hour-long run)",
         [bench.loadmgr, "metrics", "report", run, "--html", str(bench.tmp / "year.html")],
         [*floor, "intervals", uri, BIG, run], "find run + intervals", None),
    ]
    rows = []
    for measure, mine_cmd, floor_cmd, label, check in pairs:
        mine, base = bench.compare(mine_cmd, floor_cmd, env, check=check, floor_check=check)
        rows.append(process_row(CASE13, measure, mine, base, label, at_most=1.5))
    return rows


def _rss(bench: Bench, uri: str, size: YearSize) -> Row:
    """Peak RSS of `metrics report` of one hour-long run at the whole history and at a
    tenth of it: memory flat in the history's size."""
    peaks = []
    for database, small in ((SMALL, True), (BIG, False)):
        command = [bench.loadmgr, "metrics", "report", _run_id(size, small),
                   "--html", str(bench.tmp / "rss.html")]
        done = bench.run(command, _env(bench, uri, database), rss=True)
        peaks.append(done.check("metrics report").max_rss / 1_000_000)
    whole = size.runs * size.intervals
    tenth = size.small_runs * size.intervals
    return Row(CASE13, f"  metrics report peak RSS at {whole:,} vs {tenth:,} intervals", "MB",
               peaks[1], peaks[0], f"at {tenth:,}", goal="<= 1.2x",
               passed=peaks[1] <= 1.2 * peaks[0])


def _prune(bench: Bench, data: Path, size: YearSize) -> list[Row]:
    """`db prune` of the history into 1-minute windows, and the floor's writes, each on
    its own copy of the cached folder (the cache stays as generated)."""
    results = []
    for side in ("loadmgr", "floor"):
        copy = bench.tmp / f"prune-{side}" / "data"
        shutil.copytree(data, copy)
        (copy / "WiredTiger.lock").unlink(missing_ok=True)
        uri, server = wire_server(bench.processes, copy)
        try:
            if side == "loadmgr":
                env = _env(bench, uri, BIG)
                bench.run([bench.loadmgr, "db", "retention", "set", "--keep-detail", "30d",
                           "--downsample", "1m"], env).check("db retention set")
                done = bench.run([bench.loadmgr, "db", "prune", "-o", "json"], env)
                merged = json.loads(done.check("db prune").out())["retention"]
                results.append((done.seconds, int(merged.get("intervalsMerged") or 0)))
            else:
                command = [bench.python, bench.floor_script, "prune", uri, BIG, "12"]
                done = bench.run(command, clean_env()).check("floor prune")
                results.append((done.seconds, int(json.loads(done.out()))))
        finally:
            # A copy thrown away: killed, not the clean stop (2 s or more) the cache needs.
            server.kill()
            server.wait()
            bench.processes.stop(server)
            shutil.rmtree(copy.parent, ignore_errors=True)
    (mine, merged), (floor, written) = results
    rate = merged / mine if mine else 0.0
    row = Row(CASE13, f"db prune of {size.runs * size.intervals:,} intervals (1-m windows)", "s",
              mine, floor, "pymongo: the same writes", goal="<= 1.5x",
              passed=bool(floor) and mine / floor <= 1.5,
              note=f"{rate:,.0f} intervals/s (goal >= 5,000/s); floor wrote over {written:,}")
    return [row]
