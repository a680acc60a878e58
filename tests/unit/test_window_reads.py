"""Issue 26: window percentiles over compact intervals merge the stored steps as they are.

The rule: a window read over compact intervals gives exactly what the same read over
plain intervals gives (every count, every percentile), and never builds a histogram's
text to parse it again (the round trip that made the read 2.6x its floor).
"""

from __future__ import annotations

from typing import Any

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.models import Scope
from loadmgr.models.documents import compact as compact_form
from loadmgr.models.documents.compact import STEPS_FIELD, checked_steps, expand, hist_flat
from loadmgr.models.histogram import MAX_BUCKET_MS, MAX_COUNT, encode, merge_steps_into, merged
from loadmgr.service.analysis import windows as window_reads
from loadmgr.service.analysis.windows import Window, window_stats
from loadmgr.store import Store
from tests.metrics_data import make_run, make_test, plugin_snapshots

histograms = st.dictionaries(
    st.integers(0, MAX_BUCKET_MS), st.integers(1, MAX_COUNT), max_size=40
) | st.dictionaries(st.integers(0, 2_000), st.integers(1, 500), max_size=150)


@settings(max_examples=200, derandomize=True)
@given(st.lists(histograms, max_size=6))
def test_merged_steps_are_the_merged_histograms(parts: list[dict[int, int]]) -> None:
    target: dict[int, int] = {}
    for part in parts:
        steps = hist_flat(encode(part))
        assert steps is not None
        merge_steps_into(target, checked_steps(steps))
    assert target == merged(parts)


def test_a_stored_steps_field_is_never_taken_as_read() -> None:
    # Only `expand(steps=True)` makes it: one another program stored is dropped unread.
    doc = {"seq": 1, STEPS_FIELD: [1, 10**12], "hist": "1:1"}
    assert expand(dict(doc), steps=True) == {"seq": 1, "hist": "1:1"}


def _stores(count: int) -> tuple[Any, Store, Store]:
    run = make_run(make_test(), collectionMode="plugin", collector={"origin": 0})
    intervals = plugin_snapshots(run, count)
    plain = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    plain.db["metrics_timeseries"].insert_many([s.model_dump(mode="python") for s in intervals])
    small = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    small.metrics.save(intervals)
    assert small.db["metrics_timeseries"].count_documents({"histZ": {"$exists": True}}) == count
    return run, plain, small


WINDOWS = [Window(), Window(start=4.0), Window(start=2.0, end=10.0), Window(end=6.0)]


@pytest.mark.parametrize("per_request", [False, True])
@pytest.mark.parametrize("window", WINDOWS, ids=repr)
def test_a_window_over_compact_intervals_reads_as_over_plain_ones_without_text(
    monkeypatch: pytest.MonkeyPatch, window: Window, per_request: bool
) -> None:
    run, plain, small = _stores(12)
    # The intervals' origin is their first window's start (plugin_snapshots: 2-s windows).
    first = plain.db["metrics_timeseries"].find_one({"seq": 1})
    assert first is not None
    origin = int(first["windowStart"].timestamp())
    run = run.model_copy(update={"collector": {"origin": origin}})
    expected = window_stats(plain, run, window, per_request=per_request)
    assert expected["exact"] and expected["totals"]["requests"] > 0

    def no_text(*_args: Any) -> Any:
        raise AssertionError("a compact histogram went through text")

    monkeypatch.setattr(compact_form, "_hist_text", no_text)
    monkeypatch.setattr(window_reads, "merge_text_into", no_text)
    assert window_stats(small, run, window, per_request=per_request) == expected
