"""Newest-first reads in `createdAt` windows on the real SecantusDB: what the one sorted
query answered, for random histories with equal times and runs on the windows' edges
(tests/unit/test_newest_windows.py holds the property and runs it on mongomock)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_newest_windows import bounds, check_windows_answer_the_sorted_query, runs


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(made=runs, since=bounds, until=bounds, limit=st.sampled_from([0, 1, 5, 30]))
def test_windows_answer_what_the_sorted_query_answered_on_secantusdb(
    mongo_db: Any,
    made: list[tuple[str, datetime | None, bool]],
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> None:
    collection = mongo_db["load_test_runs"]
    check_windows_answer_the_sorted_query(collection, made, since, until, limit)
