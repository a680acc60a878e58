"""The benchmark script runs end to end at its smallest size, so it cannot rot.

Its timings are not judged here (a shared CI machine is no place for that): only that it
runs every case, prints each, and exits 0. See docs/benchmarks.md for the real figures.
The cases run in a few groups, each a test of its own, so parallel test workers share them
(one run of every case in a row was the suite's longest test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import CASES

REPO = Path(__file__).resolve().parents[2]
# About even (the slowest group is the suite's tail): case 13 alone, the two that start
# Locust clusters together.
GROUPS = {
    "cli": ("startup", "tests-list", "metrics", "embedded", "history"),
    "load": ("local", "plugin"),
    "analysis": ("collector", "windows", "trend", "schedules", "server"),
    "year": ("year",),
}


def test_the_groups_hold_every_case_once() -> None:
    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(CASES) and len(grouped) == len(set(grouped))


@pytest.fixture(scope="session")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bytecode folder for every group: loadmgr is compiled once (some 3 s of CPU a
    group), by the first, and the others read it (Python writes each file atomically).
    Under xdist, beside the workers' own folders, so groups on any worker share it."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "bench-pycache"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_bench_runs_every_case_at_its_smallest_size(
    group: str, tmp_path: Path, pycache: Path
) -> None:
    names = GROUPS[group]
    results = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADMGR_", "LOCUST_"))}
    env["LOADMGR_BENCH_CACHE"] = str(tmp_path / "cache")  # case 13's generated history
    env["LOADMGR_BENCH_PYCACHE"] = str(pycache)
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--size", "smoke", "--repeat", "1",
         "--only", ",".join(names), "--json", str(results)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    labels = {CASES[name][0] for name in names}
    for label in labels:
        assert label in done.stdout, f"{label!r} missing from:\n{done.stdout}"
    assert "error:" not in done.stdout
    data = json.loads(results.read_text())
    assert {row["case"] for row in data["results"]} == labels
    assert data["machine"]["nproc"]
