"""What every case shares: sizes, the run's context, side-by-side timing, result rows."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Processes, Timed, clean_env, executable, timed


@dataclass(frozen=True)
class Size:
    """How big each case's data and runs are."""

    tests: int  # goal 2: tests listed
    intervals: int  # goal 3: intervals of the timeseries run
    interval_requests: int  # goal 3: requests per interval
    rss_intervals: int  # goal 3: intervals of the run whose peak RSS is checked (0: skip)
    payload_entries: int  # goal 4: request entries per /stats/requests payload
    cpu_payloads: int  # goal 4: payloads timed
    hour_payloads: int  # goal 4: payloads of the simulated hour (2-s interval)
    load_seconds: int  # goal 5: duration of each load run
    load_users: int  # goal 5: users of each load run
    load_pairs: int  # goal 5: at most this many (locust, loadmgr) pairs
    # goals 5, 7: Locust workers of each load run; 0: one per CPU. The smoke size's one
    # worker still runs a master and its workers, with fewer Locust processes to start.
    load_workers: int
    embedded_tests: int  # goal 6: tests listed from each store


SIZES = {
    # The smallest run of every case: what the test suite runs, so the script cannot rot
    # (tests/unit/test_bench_smoke.py); its figures mean nothing.
    "smoke": Size(
        tests=10,
        intervals=20,
        interval_requests=5,
        rss_intervals=0,
        payload_entries=50,
        cpu_payloads=2,
        hour_payloads=4,
        load_seconds=1,  # the cluster's starts are what it costs: the run's code path is whole
        load_users=4,
        load_pairs=1,
        load_workers=1,
        embedded_tests=3,
    ),
    "tiny": Size(
        tests=100,
        intervals=100,
        interval_requests=20,
        rss_intervals=0,
        payload_entries=500,
        cpu_payloads=10,
        hour_payloads=20,
        load_seconds=5,
        load_users=10,
        load_pairs=1,
        load_workers=0,
        embedded_tests=10,
    ),
    "full": Size(
        tests=2_000,
        intervals=10_000,
        interval_requests=20,
        rss_intervals=100_000,
        payload_entries=500,
        cpu_payloads=60,
        hour_payloads=1_800,
        load_seconds=30,
        load_users=50,
        load_pairs=3,
        load_workers=0,
        embedded_tests=50,
    ),
}


def load_workers(size: Size) -> int:
    """The Locust workers of a load run at `size`: its own number, else one per CPU."""
    return size.load_workers or os.cpu_count() or 1


@dataclass
class Row:
    """One measured line of the table; `passed` is None when there is no goal to judge."""

    case: str
    measure: str
    unit: str
    loadmgr: float | None
    floor: float | None = None
    floor_label: str = ""
    goal: str = ""
    passed: bool | None = None
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.loadmgr is None or not self.floor:
            return None
        return self.loadmgr / self.floor

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "measure": self.measure,
            "unit": self.unit,
            "loadmgr": self.loadmgr,
            "floor": self.floor,
            "floorLabel": self.floor_label,
            "ratio": self.ratio,
            "goal": self.goal,
            "passed": self.passed,
            "note": self.note,
            "samples": self.samples,
        }


def skipped(case: str, measure: str, reason: str) -> Row:
    return Row(case, measure, "", None, note=f"skipped: {reason}")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def ratio_row(
    case: str,
    measure: str,
    mine: Sequence[float],
    floor: Sequence[float],
    floor_label: str,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
    unit: str = "s",
) -> Row:
    """A row judged on median(mine) / median(floor) against `at_most` or `at_least`."""
    row = Row(case, measure, unit, median(mine), median(floor), floor_label,
              samples={"loadmgr": list(mine), "floor": list(floor)})
    ratio = row.ratio
    if at_most is not None:
        row.goal = f"<= {at_most:g}x"
        row.passed = ratio is not None and ratio <= at_most
    elif at_least is not None:
        row.goal = f">= {at_least:g}x"
        row.passed = ratio is not None and ratio >= at_least
    return row


@dataclass
class Bench:
    """One benchmark run: its size, its temporary directory, its wire server and processes."""

    size: Size
    size_name: str
    repeat: int
    tmp: Path
    uri: str
    processes: Processes

    @property
    def loadmgr(self) -> str:
        return executable("loadmgr")

    @property
    def python(self) -> str:
        return sys.executable

    @property
    def floor_script(self) -> str:
        return str(Path(__file__).with_name("floor.py"))

    def env(self, database: str | None = None, **extra: str) -> dict[str, str]:
        """loadmgr's environment: its own LOADMGR_HOME, the bench server when `database`."""
        home = self.tmp / "home"
        values = {"LOADMGR_HOME": str(home), "LOADMGR_USER": "bench", **extra}
        if database is not None:
            values.update(LOADMGR_MONGO_URI=self.uri, LOADMGR_DATABASE=database)
        return clean_env(**values)

    def client(self) -> Any:
        import pymongo

        return pymongo.MongoClient(self.uri, tz_aware=True)

    def run(self, command: Sequence[str], env: dict[str, str], *, rss: bool = False) -> Timed:
        return timed(command, env, self.tmp / "out", rss=rss)

    def compare(
        self,
        mine: Sequence[str],
        floor: Sequence[str],
        mine_env: dict[str, str],
        floor_env: dict[str, str] | None = None,
        check: Callable[[str], object] | None = None,
        floor_check: Callable[[str], object] | None = None,
        repeat: int | None = None,
    ) -> tuple[list[Timed], list[Timed]]:
        """Both commands once to warm up (outputs checked), then `repeat` times, alternating.
        At smoke size the checked run is the only one: the figures mean nothing there."""
        floor_env = floor_env or clean_env()
        mine_runs: list[Timed] = []
        floor_runs: list[Timed] = []
        smoke = self.size_name == "smoke"
        for command, env, checker, runs in (
            (mine, mine_env, check, mine_runs),
            (floor, floor_env, floor_check, floor_runs),
        ):
            result = self.run(command, env).check(" ".join(command[:4]))
            if checker is not None:
                checker(result.out())
            _discard(result)
            if smoke:
                runs.append(result)
        for index in range(0 if smoke else repeat or self.repeat):
            order = [(mine, mine_env, mine_runs), (floor, floor_env, floor_runs)]
            for command, env, runs in order if index % 2 == 0 else reversed(order):
                result = self.run(command, env).check(" ".join(command[:4]))
                _discard(result)
                runs.append(result)
        return mine_runs, floor_runs


def _discard(result: Timed) -> None:
    for path in (result.stdout, result.stderr):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def seconds(runs: Sequence[Timed]) -> list[float]:
    return [run.seconds for run in runs]


def process_row(
    case: str, measure: str, mine: Sequence[Timed], floor: Sequence[Timed], floor_label: str,
    *, at_most: float,
) -> Row:
    """A row of two commands' wall times; their CPU times (steadier on a busy machine) noted."""
    row = ratio_row(case, measure, seconds(mine), seconds(floor), floor_label, at_most=at_most)
    mine_cpu = [run.cpu for run in mine]
    floor_cpu = [run.cpu for run in floor]
    row.samples.update(loadmgr_cpu=mine_cpu, floor_cpu=floor_cpu)
    cpu, base = median(mine_cpu), median(floor_cpu)
    if base:
        row.note = f"CPU {cpu * 1000:,.0f} ms vs {base * 1000:,.0f} ms ({cpu / base:.2f}x)"
    return row
