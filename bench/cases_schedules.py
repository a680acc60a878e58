"""Goal of issue 14: `schedules tick` with nothing due costs no more than `runs list`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench.cases_cli import _ensure_indexes, _json_list
from bench.data import insert_batched, run_document, test_documents
from bench.harness import Bench, Row, process_row

CASE = "10 schedules tick"
SCHEDULES = 1_000
RUNS = 50  # what `runs list` shows by default


def _schedule_documents(test_id: str, count: int) -> Any:
    """`count` schedules of one test, every one due tomorrow at the earliest."""
    from loadmgr.models import utcnow
    from loadmgr.models.schedules import Schedule

    tomorrow = utcnow() + timedelta(days=1)
    for index in range(count):
        yield Schedule(
            name=f"bench-schedule-{index:05d}",
            loadTestId=test_id,
            cron=f"{index % 60} {index % 24} * * *",
            nextSlotAt=tomorrow + timedelta(minutes=index),
        ).to_document()


def schedules_tick(bench: Bench) -> list[Row]:
    """`schedules tick` over 1,000 schedules, none due, against `runs list` (50 runs)."""
    database = "bench_schedules"
    client = bench.client()
    try:
        client.drop_database(database)
        db = client[database]
        test = next(test_documents(1, prefix="scheduled"))
        db.load_tests.insert_one(dict(test))
        insert_batched(db.schedules, _schedule_documents(str(test["id"]), SCHEDULES))
        insert_batched(db.load_test_runs, (run_document(test["id"], 10, 100) for _ in range(RUNS)))
    finally:
        client.close()
    _ensure_indexes(bench, database)
    mine, base = bench.compare(
        [bench.loadmgr, "schedules", "tick", "-o", "json"],
        [bench.loadmgr, "runs", "list", "-o", "json"],
        bench.env(database),
        bench.env(database),
        check=_json_list(0),
        floor_check=_json_list(RUNS),
    )
    measure = f"schedules tick, {SCHEDULES:,} schedules none due"
    return [process_row(CASE, measure, mine, base, f"runs list ({RUNS} runs)", at_most=1.0)]
