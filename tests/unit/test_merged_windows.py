"""Issue 26: the plugin merges its seconds into the collector's windows on the master.

The rule: an answer merged on the master (`&origin=&window=`) and the per-second answer an
older plugin gives for the same seconds store the same intervals, field for field (every
count, every percentile, every histogram's text); the collector asks for the merged form
and reads whichever comes back.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.cases_windows import plugin_module
from loadmgr.locust.seconds import InvalidPayload, parse_seconds
from loadmgr.models import MetricSnapshot, RequestStats
from loadmgr.models.documents import compact as compact_form
from loadmgr.models.documents.compact import compact, hist_flat
from loadmgr.models.histogram import (
    StepsText,
    encode,
    steps_summary_and_text,
    summary_and_text,
)
from loadmgr.service.collection.sources import PluginSource
from loadmgr.service.collection.windows import WindowBuilder

ORIGIN = 1_800_000_000


PLUGIN = plugin_module()  # with a stand-in `locust` (the real one gevent-patches pytest)


def _answer(seconds: dict[int, list[list[Any]]], complete: int, after: int) -> dict[str, Any]:
    shown = {t: e for t, e in seconds.items() if after < t < complete}
    return {
        "plugin": "loadmgr",
        "version": 1,
        "now": float(complete),
        "complete": complete,
        "oldest": None,
        "test_started": float(ORIGIN),
        "state": "running",
        "user_count": 5,
        "worker_count": 2,
        "more": False,
        "seconds": [{"t": t, "entries": e} for t, e in sorted(shown.items())],
    }


def _merged(answer: dict[str, Any], origin: int, interval: int) -> dict[str, Any]:
    """What a plugin that merges answers for the same seconds (its own `window_page`)."""
    return {
        **answer,
        "windows": {"origin": origin, "interval": interval},
        "seconds": PLUGIN.window_page(answer["seconds"], origin, interval),
    }


def _collected(
    seconds: dict[int, list[list[Any]]], cuts: list[int], end: int, interval: int, merged: bool
) -> list[dict[str, Any]]:
    stored = _snapshots(seconds, cuts, end, interval, merged)
    return [s.model_dump(mode="python", exclude={"id", "timestamp"}) for s in stored]


def _snapshots(
    seconds: dict[int, list[list[Any]]], cuts: list[int], end: int, interval: int, merged: bool
) -> list[MetricSnapshot]:
    builder = WindowBuilder("r", origin=ORIGIN, interval=interval)
    windows = (ORIGIN, interval)
    stored = []
    for complete in [*cuts, end]:
        after = builder.cursor
        answer = _answer(seconds, complete, after)
        if merged:
            answer = _merged(answer, *windows)
        batch = parse_seconds(answer, after, windows)
        builder.add(batch)
        stored += builder.ready(batch, final=complete == end)
    return stored


histograms = st.dictionaries(st.integers(0, 3_000), st.integers(1, 50), max_size=12)
second_entries = st.lists(
    st.tuples(st.sampled_from(["/a", "/b", "/c", ""]), histograms, st.integers(0, 3)),
    max_size=4,
)


def _seconds(
    per_second: list[list[tuple[str, dict[int, int], int]]], early: int
) -> dict[int, list[list[Any]]]:
    seconds: dict[int, list[list[Any]]] = {}
    for index, entries in enumerate(per_second):
        t = ORIGIN - early + index
        rows = []
        for name, histogram, extra in entries:
            requests = sum(histogram.values()) + extra
            pairs = [[ms, n] for ms, n in sorted(histogram.items())]
            rows.append(["GET", name, requests, min(extra, requests), pairs])
        if rows:
            seconds[t] = rows
    return seconds


Scenario = tuple[dict[int, list[list[Any]]], list[int], int, int, int]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """(seconds, cuts, end, interval, early): seconds from `early` before the origin
    (window 0 takes them), names repeating within a second (the plugin adds them up),
    answers cut at random watermarks."""
    per_second = draw(st.lists(second_entries, min_size=1, max_size=25))
    interval, early = draw(st.integers(1, 7)), draw(st.integers(0, 3))
    cuts = draw(st.lists(st.integers(0, 30), max_size=3))
    seconds = _seconds(per_second, early)
    end = ORIGIN - early + len(per_second) + 1
    marks = sorted({ORIGIN - early + cut for cut in cuts if ORIGIN - early + cut < end})
    return seconds, marks, end, interval, early


@settings(max_examples=120, deadline=None, derandomize=True)
@given(scenarios())
def test_merged_and_per_second_answers_store_the_same_intervals(scenario: Scenario) -> None:
    seconds, marks, end, interval, early = scenario
    plain = _collected(seconds, marks, end, interval, merged=False)
    assert _collected(seconds, marks, end, interval, merged=True) == plain
    if not early:  # (a run's last window starts at the origin: none holds earlier seconds)
        assert sum(s["intervalRequests"] for s in plain) == sum(
            row[2] for rows in seconds.values() for row in rows
        )


@settings(max_examples=200, derandomize=True)
@given(st.dictionaries(st.integers(0, 10**6), st.integers(0, 10**6), max_size=60))
def test_a_summary_from_steps_is_the_summary_from_the_histogram(
    histogram: dict[int, int],
) -> None:
    # The plugin's steps keep an empty bucket; the summary and the text leave it out.
    assert steps_summary_and_text(PLUGIN._steps(histogram)) == summary_and_text(histogram)
    assert encode(histogram) == summary_and_text(histogram)[1]


@settings(max_examples=200, derandomize=True)
@given(st.dictionaries(st.integers(0, 10**6), st.integers(0, 10**6), max_size=60))
def test_a_text_made_from_steps_carries_what_the_encoder_reads_from_it(
    histogram: dict[int, int],
) -> None:
    # The compact encoder takes `StepsText.steps` for `hist_flat(text)`: they must agree.
    text = steps_summary_and_text(PLUGIN._steps(histogram))[1]
    if type(text) is StepsText:
        assert hist_flat(text) == text.steps
    else:  # an empty bucket: the text is a plain one, read back as before
        assert 0 in histogram.values()


def _as_plain_text(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with every histogram a plain `str`: what the encoder reads back by parsing."""

    def plain(value: Any) -> Any:
        return None if value is None else str(value)

    items = [{**item, "hist": plain(item["hist"])} for item in doc["requestStats"]]
    return {**doc, "hist": plain(doc["hist"]), "requestStats": items}


@settings(max_examples=120, deadline=None, derandomize=True)
@given(scenarios())
def test_a_merged_window_is_stored_as_its_texts_would_be(scenario: Scenario) -> None:
    # The fast path (the steps handed to the encoder, items made without pydantic's loop)
    # stores the very bytes the texts give, and items the validated model equals.
    seconds, marks, end, interval, _ = scenario
    for snapshot in _snapshots(seconds, marks, end, interval, merged=True):
        doc = snapshot.model_dump(mode="python")
        assert compact(doc) == compact(_as_plain_text(doc))
        for item in snapshot.requestStats:
            again = RequestStats.model_validate(item.model_dump())
            assert again == item and again.model_fields_set == item.model_fields_set
            assert list(vars(item)) == list(vars(again)) and item.model_extra == {}


def test_a_merged_window_is_compacted_without_reading_its_items_texts_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seconds = {
        ORIGIN + i: [["GET", f"/{n}", 3, 0, [[5 + n, 2], [40, 1]]] for n in range(4)]
        for i in range(5)
    }
    (snapshot,) = _snapshots(seconds, [], ORIGIN + 6, 5, merged=True)
    doc = snapshot.model_dump(mode="python")
    expected = compact(_as_plain_text(doc))
    parsed: list[str] = []

    def parse(text: str) -> list[int] | None:
        parsed.append(text)
        return hist_flat(text)

    monkeypatch.setattr(compact_form, "hist_flat", parse)
    # Only the window's own histogram (merged here from four) is read back from its text.
    assert compact(doc) == expected and parsed == [doc["hist"]]


class _Client:
    """A Locust client whose plugin merges windows, or an older one that cannot."""

    def __init__(self, seconds: dict[int, list[list[Any]]], complete: int, merges: bool):
        self.seconds_held, self.complete, self.merges = seconds, complete, merges
        self.asked: list[tuple[int, int] | None] = []

    def seconds(
        self, after: int | None = None, limit: int = 600, windows: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        self.asked.append(windows)
        answer = _answer(self.seconds_held, self.complete, -1 if after is None else after)
        return _merged(answer, *windows) if self.merges and windows else answer


@pytest.mark.parametrize("merges", [True, False], ids=["merging plugin", "older plugin"])
def test_the_collector_asks_for_merged_windows_and_reads_either_answer(merges: bool) -> None:
    seconds = {ORIGIN + i: [["GET", f"/{i % 3}", 4, 1, [[10 + i, 3]]]] for i in range(12)}
    stored = {}
    for form in (True, merges):
        client = _Client(seconds, ORIGIN + 12, form)
        builder = WindowBuilder("r", origin=ORIGIN, interval=5)
        source = PluginSource(client, builder)  # type: ignore[arg-type]
        snapshots = source.poll().snapshots
        assert client.asked == [(ORIGIN, 5)]
        stored[form] = [s.model_dump(exclude={"id", "timestamp"}) for s in snapshots]
    assert len(stored[merges]) == 2 and stored[merges] == stored[True]


MERGED_BAD = {
    "unasked alignment": {"windows": {"origin": ORIGIN + 1, "interval": 5}},
    "two windows in one": {"seconds": [{"t": ORIGIN + 6, "first": ORIGIN, "n": 2, "entries": []}]},
    "more seconds than it spans": {
        "seconds": [{"t": ORIGIN + 1, "first": ORIGIN, "n": 3, "entries": []}]
    },
    "descending steps": {
        "seconds": [
            {"t": ORIGIN, "first": ORIGIN, "n": 1, "entries": [["GET", "/", 9, 0, [5, 1, 0, 1]]]}
        ]
    },
    "pairs, not steps": {
        "seconds": [
            {"t": ORIGIN, "first": ORIGIN, "n": 1, "entries": [["GET", "/", 9, 0, [[5, 1]]]]}
        ]
    },
    "more counted than requests": {
        "seconds": [{"t": ORIGIN, "first": ORIGIN, "n": 1, "entries": [["GET", "/", 1, 0, [5, 2]]]}]
    },
}


@pytest.mark.parametrize("case", sorted(MERGED_BAD))
def test_impossible_merged_answers_are_refused(case: str) -> None:
    payload = {**_answer({}, ORIGIN + 10, -1), "windows": {"origin": ORIGIN, "interval": 5}}
    payload.update(MERGED_BAD[case])
    with pytest.raises(InvalidPayload):
        parse_seconds(payload, None, (ORIGIN, 5))
