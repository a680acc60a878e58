"""Case 9: `tests trend` (issue 13) over 1,000 nightly runs against a raw pymongo read of
the same fields plus the same change-point search, both as processes; and the search alone
on 1,000 points, in this process."""

from __future__ import annotations

import copy
import json
import random
import time
from datetime import timedelta
from typing import Any

from bench.data import START, insert_batched, run_document, test_documents
from bench.harness import Bench, Row, median, process_row

CASE9 = "9 trend"
TREND_RUNS = {"smoke": 100, "tiny": 100, "full": 1_000}
DATABASE = "bench_trend"
METRICS = 3  # p95, rps, error_rate: the command's default


def _p95(count: int) -> list[float]:
    """±10% noise around 120 ms, 30% slower from 60% of the way on."""
    rng = random.Random(13)
    step = count * 3 // 5
    return [120.0 * (1 + rng.uniform(-0.1, 0.1)) * (1.3 if i >= step else 1.0)
            for i in range(count)]


def _store_history(bench: Bench, count: int) -> str:
    test = next(test_documents(1, prefix="trend"))
    template = run_document(test["id"], 60, 20)
    client = bench.client()
    try:
        db = client[DATABASE]
        db.load_tests.drop()
        db.load_test_runs.drop()
        db.load_tests.insert_one(dict(test))

        def runs() -> Any:
            for night, p95 in enumerate(_p95(count)):
                doc = copy.deepcopy(template)
                doc["id"] = f"trend-run-{night:05d}"
                doc["createdAt"] = START + timedelta(days=night)
                doc["finalStats"]["totals"]["p95ResponseMs"] = p95
                yield doc

        insert_batched(db.load_test_runs, runs())
    finally:
        client.close()
    return str(test["name"])


def _rows(expected: int) -> Any:
    def check(text: str) -> None:
        data = json.loads(text)
        if not isinstance(data, list) or len(data) != expected:
            raise RuntimeError(f"expected {expected} rows, got {len(data)}")
        starts = [row for row in data if row.get("startsRegime")]
        if len(starts) != 1 or starts[0]["metric"] != "p95":
            raise RuntimeError(f"expected one p95 change point, got {starts[:3]}")

    return check


def trend(bench: Bench) -> list[Row]:
    from bench.cases_cli import _ensure_indexes
    from loadmgr.service.analysis.change_points import Detection, detect_shifts

    count = TREND_RUNS[bench.size_name]
    name = _store_history(bench, count)
    _ensure_indexes(bench, DATABASE)
    mine, base = bench.compare(
        [bench.loadmgr, "tests", "trend", name, "--last", str(count), "-o", "json"],
        [bench.python, bench.floor_script, "trend", bench.uri, DATABASE, name, str(count)],
        bench.env(DATABASE),
        check=_rows(count * METRICS),
        floor_check=_rows(count * METRICS),
    )
    rows = [
        process_row(CASE9, f"tests trend --last {count} -o json", mine, base,
                    "pymongo read + search", at_most=1.5)
    ]
    series = _p95(1_000)
    seconds = []
    for _ in range(max(3, bench.repeat)):
        began = time.perf_counter()
        found = detect_shifts(series, Detection())
        seconds.append(time.perf_counter() - began)
    took = median(seconds)
    rows.append(
        Row(CASE9, "change points of 1,000 points", "s", took, goal="< 1 s", passed=took < 1.0,
            note=f"found {len(found)} (the step at {found[0].index if found else '-'})",
            samples={"loadmgr": seconds})
    )
    return rows
