"""loadmgr's benchmarks (issue #6): each goal measured side by side with its floor.

    python -m bench.run [--size tiny|full] [--repeat N] [--only CASE] [--json FILE]

Starts its own SecantusDB on a free loopback port, generates its data, runs each case
after a warm-up, and prints per case the median of loadmgr, the median of its floor, the
ratio and the goal. Timings are reported, never asserted: the exit code is 0 unless a case
could not run at all. Cases: startup, tests-list, metrics, collector, local, embedded,
plugin, windows, trend, schedules, server, history, year (or their numbers, 1-13). Every
process it starts is stopped and its temp dir removed (case 13 keeps its generated history
under LOADMGR_BENCH_CACHE).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench import (
    cases_cli,
    cases_history,
    cases_load,
    cases_plugin,
    cases_schedules,
    cases_server,
    cases_trend,
    cases_windows,
    cases_year,
)
from bench.harness import SIZES, Bench, Row
from bench.procs import PYCACHE_PREFIX, Processes, wire_server
from bench.report import machine, table, write_json

CASES: dict[str, tuple[str, Callable[[Bench], list[Row]]]] = {
    "startup": ("1 startup", cases_cli.startup),
    "tests-list": ("2 tests list", cases_cli.tests_list),
    "metrics": ("3 metrics show", cases_cli.metrics_show),
    "collector": ("4 collector", cases_load.collector),
    "local": ("5 local cluster", cases_load.local_cluster),
    "embedded": ("6 embedded", cases_cli.embedded),
    "plugin": ("7 plugin", cases_plugin.plugin_cost),
    "windows": ("8 exact windows", cases_windows.exact_windows),
    "trend": ("9 trend", cases_trend.trend),
    "schedules": ("10 schedules tick", cases_schedules.schedules_tick),
    "server": ("11 server metrics", cases_server.server_metrics),
    "history": ("12 history", cases_history.history),
    "year": ("13 year of history", cases_year.year),
}


def _selected(only: list[str] | None) -> list[str]:
    if not only:
        return list(CASES)
    names = list(CASES)
    chosen = []
    for item in (part.strip() for value in only for part in value.split(",")):
        name = names[int(item) - 1] if item.isdigit() and 1 <= int(item) <= len(names) else item
        if name not in CASES:
            raise SystemExit(
                f"error: unknown case {item!r} (one of {', '.join(names)}, or 1-{len(names)})"
            )
        if name not in chosen:
            chosen.append(name)
    return [name for name in names if name in chosen]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="full",
                        help="smoke: what the tests run; tiny: a minute; full: the goals' sizes")
    parser.add_argument("--repeat", type=int, default=None,
                        help="measured runs per case after the warm-up (default 5; smoke, tiny 1)")
    parser.add_argument("--only", action="append", metavar="CASE",
                        help=f"run only this case (repeatable): {', '.join(CASES)} "
                        f"or 1-{len(CASES)}")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results here")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 5 if args.size == "full" else 1
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: all is stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    selected = _selected(args.only)
    signal.signal(signal.SIGTERM, _terminated)
    tmp = Path(tempfile.mkdtemp(prefix="loadmgr-bench-"))
    processes = Processes()
    rows: list[Row] = []
    errors = 0
    started = time.perf_counter()
    info = machine()
    _progress(f"bench: size {args.size}, repeat {args.repeat}, {info['nproc']} CPU, "
              f"Python {info['python']}, {info['machine']}; temp dir {tmp}")
    # LOADMGR_BENCH_PYCACHE: a folder shared by several bench runs (the smoke test's
    # groups): the prefix hides site-packages' own .pyc files, so a fresh one means
    # compiling loadmgr, Locust, pymongo ... again in each bench run.
    PYCACHE_PREFIX["PYTHONPYCACHEPREFIX"] = os.environ.get("LOADMGR_BENCH_PYCACHE") or str(
        tmp / "pycache"
    )
    wire = None
    try:
        uri, wire = wire_server(processes, tmp / "wire" / "data")
        bench = Bench(SIZES[args.size], args.size, args.repeat, tmp, uri, processes)
        for name in selected:
            label, case = CASES[name]
            _progress(f"bench: {label} ...")
            case_started = time.perf_counter()
            try:
                rows.extend(case(bench))
            except Exception as exc:  # one broken case must not hide the others
                errors += 1
                traceback.print_exc(file=sys.stderr)
                rows.append(Row(label, name, "", None, note=f"error: {exc}"))
            _progress(f"bench: {label} done in {time.perf_counter() - case_started:.1f} s")
    finally:
        if wire is not None:
            # Its data goes with the temp dir: killed, not the clean stop (2 s or more).
            wire.kill()
            wire.wait()
        processes.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print(table(rows))
    print(f"\n{args.size} size, {args.repeat} measured run(s) per case after a warm-up, "
          f"{elapsed:.0f} s in all; medians. Machine: {info['nproc']} CPU ({info['cpu']}), "
          f"{info['memory']}, {info['machine']}, Python {info['python']}.")
    if args.json:
        write_json(args.json, args.size, args.repeat, rows, elapsed)
    return 1 if errors else 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
