"""Downsampling is exact: a percentile over any window of merged intervals is the one the
original intervals give over it (overall and per request), counts add up, and merging
again (the same step, or a coarser one) changes nothing it should not."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.models.documents.compact import compact, expand, hist_flat
from loadmgr.models.histogram import (
    Histogram,
    encode,
    merge_text_into,
    summary,
    summary_and_steps_text,
    summary_and_text,
)
from loadmgr.models.stats.downsample import REQUEST_FIELDS, covered_through, merge, windows

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
NAMES = (("GET", "/a"), ("POST", "/b"))
# Locust's rounded response times: 1 ms steps below 100, 10 ms to 1 s, 100 ms above.
BUCKETS = [*range(1, 100, 7), *range(100, 1000, 90), *range(1000, 10000, 900), 25000]

histograms = st.dictionaries(st.sampled_from(BUCKETS), st.integers(1, 50), max_size=6)


def interval(seq: int, per_name: list[Histogram], seconds: int = 5) -> dict[str, Any]:
    whole: Histogram = {}
    items = []
    for (method, name), histogram in zip(NAMES, per_name, strict=True):
        merge_text_into(whole, encode(histogram))
        items.append(
            {
                "method": method,
                "name": name,
                "intervalRequests": sum(histogram.values()),
                "intervalFailures": sum(histogram.values()) // 10,
                "numRequests": seq * 100,
                "avgContentLength": float(seq % 7),
                # Fields a merge does not read (it works them out from the histogram):
                # the prune does not decode them (`REQUEST_FIELDS`).
                "avgResponseTimeMs": 1.5 * seq,
                "p95ResponseMs": float(seq),
                "requestsPerSec": seq / 3,
                "hist": encode(histogram),
            }
        )
    end = START + timedelta(seconds=seconds * seq)
    return {
        "loadTestRunId": "r",
        "seq": seq,
        "timestamp": end,
        "windowStart": end - timedelta(seconds=seconds),
        "windowEnd": end,
        "intervalSec": float(seconds),
        "percentileWindow": "interval",
        "intervalRequests": sum(whole.values()),
        "intervalFailures": sum(i["intervalFailures"] for i in items),
        "currentUsers": seq,
        "hist": encode(whole),
        "requestStats": items,
    }


def downsampled(intervals: list[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """What the store holds after a prune: each group replaced by its merged window."""
    kept = {doc["seq"]: doc for doc in intervals}
    for group in windows(intervals, step):
        window = merge(group, step)
        for doc in group:
            kept.pop(doc["seq"])
        kept[window["seq"]] = window
    return [kept[seq] for seq in sorted(kept)]


def over(docs: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, Any]:
    """Counts and percentiles of the documents wholly inside [start, end)."""
    inside = [d for d in docs if d["windowStart"] >= start and d["windowEnd"] <= end]
    whole: Histogram = {}
    per: dict[str, Histogram] = {}
    failures = 0
    for doc in inside:
        merge_text_into(whole, doc["hist"])
        failures += doc["intervalFailures"]
        for item in doc["requestStats"]:
            merge_text_into(per.setdefault(item["name"], {}), item["hist"])
    return {
        "whole": summary(whole),
        "requests": sum(whole.values()),
        "failures": failures,
        "per": {name: summary(h) for name, h in per.items()},
    }


runs = st.lists(st.lists(histograms, min_size=2, max_size=2), min_size=1, max_size=40)
steps = st.sampled_from([10, 15, 30, 60, 300])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(runs, steps, st.data())
def test_a_percentile_over_any_downsampled_window_is_the_originals(
    shapes: list[list[Histogram]], step: int, data: st.DataObject
) -> None:
    original = [interval(seq, per) for seq, per in enumerate(shapes, 1)]
    merged = downsampled(original, step)
    # Any window made of whole steps, and the whole run.
    count = len(original) * 5 // step + 1
    first = data.draw(st.integers(0, count))
    last = data.draw(st.integers(first, count + 1))
    start, end = START + timedelta(seconds=first * step), START + timedelta(seconds=last * step)
    assert over(merged, start, end) == over(original, start, end)
    whole = (START, START + timedelta(days=1))
    assert over(merged, *whole) == over(original, *whole)
    assert sum(d["intervalRequests"] for d in merged) == sum(
        d["intervalRequests"] for d in original
    )
    # Each merged window covers exactly the seqs up to the next document's.
    seqs = [d["seq"] for d in merged]
    for doc, following in zip(merged, [*seqs[1:], len(original) + 1], strict=True):
        assert covered_through(doc) == following - 1


@settings(max_examples=60, deadline=None, derandomize=True)
@given(runs)
def test_downsampling_again_changes_nothing_and_coarser_equals_direct(
    shapes: list[list[Histogram]],
) -> None:
    original = [interval(seq, per) for seq, per in enumerate(shapes, 1)]
    once = downsampled(original, 60)
    assert list(windows(once, 60)) == []  # a prune run again does nothing
    twice = downsampled(once, 300)
    direct = downsampled(original, 300)
    # The same counts and windows (a lone window keeps the step it was merged to).
    strip = ("mergedIntervals", "resolutionSec")
    assert [{k: v for k, v in d.items() if k not in strip} for d in twice] == [
        {k: v for k, v in d.items() if k not in strip} for d in direct
    ]
    assert [d.get("mergedIntervals", 1) for d in twice] == [
        d.get("mergedIntervals", 1) for d in direct
    ]


def test_intervals_without_histograms_keep_their_detail() -> None:
    docs = [interval(seq, [{10: 1}, {20: 1}]) for seq in range(1, 13)]
    docs[3] = {**docs[3], "percentileWindow": "rolling"}  # Locust's own: cannot be added
    docs[7] = {**docs[7], "gap": True}
    groups = [[d["seq"] for d in group] for group in windows(docs, 60)]
    assert groups == [[1, 2, 3], [5, 6, 7], [9, 10, 11, 12]]


def test_a_merged_window_states_its_rates_and_cumulative_totals() -> None:
    docs = [interval(seq, [{10: 3}, {20: 7}]) for seq in range(1, 13)]
    window = merge(docs, 60)
    assert window["intervalSec"] == 60
    assert window["totalRPS"] == 120 / 60
    assert window["currentUsers"] == 12  # the window's peak
    assert window["mergedThrough"] == 12 and window["resolutionSec"] == 60
    assert [i["numRequests"] for i in window["requestStats"]] == [1200, 1200]
    assert [i["intervalRequests"] for i in window["requestStats"]] == [36, 84]


def as_read_for_prune(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` as `db prune` reads it: stored compact, expanded with checked steps in place
    of histogram text, of each entry only the fields a merge reads (`iter_raw`)."""
    return expand(compact(doc), REQUEST_FIELDS, steps=True)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(runs, steps)
def test_merging_the_stores_steps_gives_the_window_merging_text_gives(
    shapes: list[list[Histogram]], step: int
) -> None:
    """The prune merges each interval's histograms as the checked step arrays the store
    decodes (no text in between), and decodes only the fields a merge reads: the same
    windows, byte for byte once stored, as merging the plain, whole intervals' text."""
    original = [interval(seq, per) for seq, per in enumerate(shapes, 1)]
    read = [as_read_for_prune(dict(doc)) for doc in original]
    by_text = [merge(group, step) for group in windows(original, step)]
    by_steps = [merge(group, step) for group in windows(read, step)]
    assert by_steps == by_text
    assert [compact(w) for w in by_steps] == [compact(w) for w in by_text]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.dictionaries(st.integers(0, 10**9), st.integers(0, 2**53), max_size=30))
def test_a_summary_with_its_steps_is_the_summary_and_its_steps_are_the_texts(
    histogram: Histogram,
) -> None:
    numbers, text = summary_and_steps_text(histogram)
    assert (numbers, text) == summary_and_text(histogram)
    if text:
        assert getattr(text, "steps", hist_flat(text)) == hist_flat(text)
