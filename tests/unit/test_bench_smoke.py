"""The benchmark script runs end to end at its smallest size, so it cannot rot.

Its timings are not judged here (a shared CI machine is no place for that): only that it
runs every case, prints each, and exits 0. See docs/benchmarks.md for the real figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = ("1 startup", "2 tests list", "3 metrics show", "4 collector", "5 local cluster",
         "6 embedded", "7 plugin", "8 exact windows", "9 trend", "10 schedules tick",
         "11 server metrics", "12 history", "13 year of history")


def test_bench_runs_every_case_at_its_smallest_size(tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADMGR_", "LOCUST_"))}
    env["LOADMGR_BENCH_CACHE"] = str(tmp_path / "cache")  # case 13's generated history
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--size", "smoke", "--repeat", "1",
         "--json", str(results)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    for case in CASES:
        assert case in done.stdout, f"{case!r} missing from:\n{done.stdout}"
    assert "error:" not in done.stdout
    data = json.loads(results.read_text())
    assert {row["case"] for row in data["results"]} == set(CASES)
    assert data["machine"]["nproc"]
