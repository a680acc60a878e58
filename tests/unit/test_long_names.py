"""Request names past MAX_NAME (a URL with a long query and no `name=`) are a real
locustfile's, not nonsense: kept, shortened the same way by every source, distinct names
staying distinct, so a run with them records its numbers instead of failing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmgr.locust.seconds import (
    MAX_NAME,
    MAX_RAW_NAME,
    InvalidPayload,
    parse_seconds,
    stored_name,
)
from loadmgr.locust.stats import final_stats
from loadmgr.locust.validation import check_stats

names = st.text(min_size=0, max_size=50) | st.text(min_size=MAX_NAME - 5, max_size=MAX_NAME + 50)


@given(names)
def test_a_name_is_kept_whole_up_to_the_limit_and_cut_with_its_digest_past_it(name: str) -> None:
    kept = stored_name(name)
    assert len(kept) <= MAX_NAME
    assert (kept == name) == (len(name) <= MAX_NAME)
    assert stored_name(kept) == kept  # shortening twice changes nothing


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_long_names_that_differ_only_past_the_cut_stay_distinct(a: str, b: str) -> None:
    prefix = "/search?q=" + "x" * MAX_NAME
    if a != b:
        assert stored_name(prefix + a) != stored_name(prefix + b)


def _plugin_answer(name: str) -> dict[str, Any]:
    return {
        "plugin": "loadmgr",
        "version": 1,
        "now": 1_000.5,
        "complete": 1_000,
        "oldest": 999,
        "test_started": 990.0,
        "state": "running",
        "user_count": 1,
        "worker_count": 1,
        "more": False,
        "seconds": [{"t": 999, "entries": [["GET", name, 2, 1, [[5, 2]]]]}],
    }


def _stats_answer(name: str) -> dict[str, Any]:
    entry = {"name": name, "method": "GET", "num_requests": 2, "num_failures": 1}
    aggregated = {"name": "Aggregated", "method": None, "num_requests": 2, "num_failures": 1}
    error = {"name": name, "method": "GET", "error": "boom", "occurrences": 1}
    return {"state": "running", "stats": [entry, aggregated], "errors": [error], "user_count": 1}


@pytest.mark.parametrize("length", [MAX_NAME, MAX_NAME + 1, 9_000, MAX_RAW_NAME])
def test_every_source_gives_one_request_the_same_key(length: int) -> None:
    name = "/search?q=" + "é" * (length - 10)
    [entry] = parse_seconds(_plugin_answer(name)).seconds[0].entries
    stats = check_stats(_stats_answer(name))
    assert entry.name == stats["stats"][0]["name"] == stats["errors"][0]["name"]
    assert entry.name == stored_name(name) and len(entry.name) <= MAX_NAME
    # Locust's CSV (for p90) names it in full: its row still joins the entry.
    row = {"Type": "GET", "Name": name, "90%": "7"}
    [request] = final_stats(stats, [row])["requestStats"]
    assert request["name"] == entry.name and request["p90ResponseMs"] is not None


def test_a_name_no_request_can_have_is_still_refused() -> None:
    name = "x" * (MAX_RAW_NAME + 1)
    with pytest.raises(InvalidPayload):
        parse_seconds(_plugin_answer(name))
    with pytest.raises(InvalidPayload):
        check_stats(_stats_answer(name))
