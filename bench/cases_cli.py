"""Goals 1, 2, 3 and 6: loadmgr commands against hand-written floors, both as processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from bench.data import insert_batched, interval_documents, run_document, test_documents
from bench.harness import Bench, Row, process_row, skipped
from bench.procs import clean_env


def _json_list(expected: int) -> Any:
    def check(text: str) -> None:
        data = json.loads(text)
        if not isinstance(data, list) or len(data) != expected:
            got = len(data) if isinstance(data, list) else type(data).__name__
            raise RuntimeError(f"expected a JSON array of {expected}, got {got}")

    return check


def _contains(word: str) -> Any:
    def check(text: str) -> None:
        if word not in text:
            raise RuntimeError(f"expected {word!r} in the output, got {text[:200]!r}")

    return check


def _ensure_indexes(bench: Bench, database: str, uri: str | None = None) -> None:
    """The indexes loadmgr creates on its first write, so both sides read the same way, and
    the schema version its first command records, so no timed command migrates."""
    from loadmgr.models import Scope
    from loadmgr.service.migration.schema import ensure_schema
    from loadmgr.store import Store

    store = Store.connect(uri or bench.uri, database, Scope(), 10_000)
    try:
        store.ensure_indexes()
        store.ensure_schedule_indexes()
        ensure_schema(store, "bench", lambda _: None)
    finally:
        store.close()


# -- 1 ---------------------------------------------------------------------------------------


def startup(bench: Bench) -> list[Row]:
    """`loadmgr --help` and `--version` against `python -c "import typer"`."""
    floor = [bench.python, "-c", "import typer"]
    rows = []
    for flag, word in (("--help", "Usage"), ("--version", "loadmgr")):
        # Cheap and the noisiest: three times the runs of the other cases.
        mine, base = bench.compare(
            [bench.loadmgr, flag], floor, bench.env(), check=_contains(word),
            repeat=3 * bench.repeat,
        )
        rows.append(
            process_row("1 startup", f"loadmgr {flag}", mine, base, "import typer", at_most=1.5)
        )
    return rows


# -- 2 ---------------------------------------------------------------------------------------


def tests_list(bench: Bench) -> list[Row]:
    """`tests list --limit N -o json` over N tests against a pymongo find + json.dumps."""
    count = bench.size.tests
    database = "bench_tests"
    client = bench.client()
    try:
        client[database].load_tests.drop()
        insert_batched(client[database].load_tests, test_documents(count))
    finally:
        client.close()
    _ensure_indexes(bench, database)
    mine, base = bench.compare(
        [bench.loadmgr, "tests", "list", "--limit", str(count), "-o", "json"],
        [bench.python, bench.floor_script, "tests", bench.uri, database, str(count)],
        bench.env(database),
        check=_json_list(count),
        floor_check=_json_list(count),
    )
    return [
        process_row("2 tests list", f"tests list --limit {count} -o json", mine, base,
                    "pymongo find+dumps", at_most=1.5)
    ]


# -- 3 ---------------------------------------------------------------------------------------

CASE3 = "3 metrics show"


def _timeseries_fields(bench: Bench) -> tuple[str, ...] | None:
    """The projection `--view timeseries` reads, when the command exists."""
    help_run = bench.run([bench.loadmgr, "metrics", "show", "--help"], bench.env())
    if help_run.returncode != 0 or "--view" not in help_run.out():
        return None
    try:
        from loadmgr.service.analysis.views import TIMESERIES_FIELDS
    except ImportError:
        return None
    return tuple(TIMESERIES_FIELDS)


def _store_run(bench: Bench, database: str, intervals: int, requests: int) -> str:
    client = bench.client()
    try:
        db = client[database]
        test = next(test_documents(1, prefix=f"run{intervals}"))
        db.load_tests.insert_one(dict(test))
        run = run_document(test["id"], intervals, requests)
        db.load_test_runs.insert_one(dict(run))
        insert_batched(db.metrics_timeseries, interval_documents(run["id"], intervals, requests))
        return str(run["id"])
    finally:
        client.close()


def metrics_show(bench: Bench) -> list[Row]:
    """`metrics show --view timeseries -o json` against a find with the same projection."""
    size = bench.size
    measure = f"metrics show --view timeseries ({size.intervals} intervals)"
    fields = _timeseries_fields(bench)
    if fields is None:
        return [skipped(CASE3, measure, "not available")]
    database = "bench_metrics"
    client = bench.client()
    try:
        client.drop_database(database)
    finally:
        client.close()
    _ensure_indexes(bench, database)
    run_id = _store_run(bench, database, size.intervals, size.interval_requests)
    env = bench.env(database)
    mine, base = bench.compare(
        [bench.loadmgr, "metrics", "show", run_id, "--view", "timeseries", "-o", "json"],
        [bench.python, bench.floor_script, "timeseries", bench.uri, database, run_id,
         ",".join(fields)],
        env,
        check=_json_list(size.intervals),
        floor_check=_json_list(size.intervals),
    )
    rows = [
        process_row(CASE3, measure, mine, base, "find, same projection", at_most=1.5),
    ]
    summary, one_run = bench.compare(
        [bench.loadmgr, "metrics", "show", run_id, "-o", "json"],
        [bench.python, bench.floor_script, "run", bench.uri, database, run_id],
        env,
        check=_contains(run_id),
        floor_check=_contains(run_id),
    )
    rows.append(
        process_row(CASE3, f"metrics show (summary, {size.intervals} intervals)", summary,
                    one_run, "find_one(run)", at_most=1.5)
    )
    rows.append(_peak_rss(bench, database, fields, run_id, size.intervals, goal=False))
    if size.rss_intervals:
        big_run = _store_run(bench, database, size.rss_intervals, size.interval_requests)
        rows.append(_peak_rss(bench, database, fields, big_run, size.rss_intervals, goal=True))
    return rows


def _peak_rss(
    bench: Bench, database: str, fields: tuple[str, ...], run_id: str, intervals: int,
    *, goal: bool,
) -> Row:
    """Peak RSS of the loadmgr process (and of the floor) printing every interval."""
    mine = bench.run(
        [bench.loadmgr, "metrics", "show", run_id, "--view", "timeseries", "-o", "json"],
        bench.env(database),
        rss=True,
    ).check("metrics show")
    count = len(json.loads(mine.out()))
    floor = bench.run(
        [bench.python, bench.floor_script, "timeseries", bench.uri, database, run_id,
         ",".join(fields)],
        clean_env(),
        rss=True,
    ).check("floor")
    rss = mine.max_rss / 1_000_000
    return Row(
        CASE3,
        f"  peak RSS at {intervals} intervals",
        "MB",
        rss,
        floor.max_rss / 1_000_000,
        "find, same projection",
        goal="< 100 MB" if goal else "",
        passed=(rss < 100 and count == intervals) if goal else None,
        note=f"{count} rows in {mine.seconds:.1f} s (floor {floor.seconds:.1f} s)",
    )


# -- 6 ---------------------------------------------------------------------------------------


def _stop_embedded(home: Path, grace: float = 3.0) -> None:
    """Stop the server loadmgr started under `home`: SIGTERM, then SIGKILL after `grace`.

    Not `loadmgr db stop`, which waits up to 15 s for a clean stop (SecantusDB itself takes
    2 s or more): this data is thrown away with its directory.
    """
    from loadmgr.store.embedded import EmbeddedServer, pid_alive

    pid = EmbeddedServer(home).status().pid
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def embedded(bench: Bench) -> list[Row]:
    """`tests list` on the embedded store (reused) against a server already running."""
    from loadmgr.store.embedded import EmbeddedServer

    count = bench.size.embedded_tests
    home = bench.tmp / "embedded-home"
    env = clean_env(LOADMGR_HOME=str(home), LOADMGR_USER="bench")
    command = [bench.loadmgr, "tests", "list", "-o", "json"]
    server = EmbeddedServer(home)
    try:
        first = bench.run(command, env).check("tests list (embedded, first)")
        state = server.status()
        if not state.running or state.uri is None:
            raise RuntimeError("the embedded server is not running after the first command")
        import pymongo

        for uri, database in ((state.uri, "loadmgr"), (bench.uri, "bench_embedded")):
            client: Any = pymongo.MongoClient(uri, tz_aware=True)
            try:
                client[database].load_tests.drop()
                insert_batched(client[database].load_tests, test_documents(count))
            finally:
                client.close()
        external = bench.env("bench_embedded")
        mine, base = bench.compare(
            command, command, env, external, check=_json_list(count), floor_check=_json_list(count)
        )
        started_pid = state.pid
        if server.status().pid != started_pid:
            raise RuntimeError("the embedded server was restarted instead of reused")
    finally:
        _stop_embedded(home)
        shutil.rmtree(home, ignore_errors=True)
    return [
        Row("6 embedded", "tests list, first call (starts the server)", "s", first.seconds,
            note="informational"),
        process_row("6 embedded", f"tests list ({count} tests), server reused", mine, base,
                    "LOADMGR_MONGO_URI", at_most=1.5),
    ]
