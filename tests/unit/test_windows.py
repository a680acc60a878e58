"""Exact intervals from per-second histograms: windows, sums, percentiles, and the checks
on what the plugin sends (issue 9)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.locust.seconds import InvalidPayload, parse_seconds
from loadmgr.models import MetricSnapshot
from loadmgr.models.histogram import decode, encode, merged, percentile, summary
from loadmgr.service.collection.windows import WindowBuilder, resume_state

ORIGIN = 1_800_000_000


def batch(
    seconds: dict[int, list[list[Any]]], complete: int, after: int = -1, **extra: Any
) -> dict[str, Any]:
    """What the plugin answers: the complete seconds after `after`."""
    shown = {t: e for t, e in seconds.items() if after < t < complete}
    return {
        "plugin": "loadmgr", "version": 1, "now": float(complete), "complete": complete,
        "oldest": None, "test_started": float(ORIGIN), "state": "running", "user_count": 5,
        "worker_count": 2, "more": False,
        "seconds": [{"t": t, "entries": entries} for t, entries in sorted(shown.items())],
        **extra,
    }


def entry(requests: int, ms: int = 10, failures: int = 0, name: str = "/") -> list[Any]:
    return ["GET", name, requests, failures, [[ms, requests]]]


def test_histogram_text_round_trips_and_merges() -> None:
    histogram = {2: 10, 150: 3, 9000: 1}
    assert decode(encode(histogram)) == histogram
    assert encode({}) == "" and decode("") == {}
    assert merged([{1: 1}, {1: 2, 3: 1}]) == {1: 3, 3: 1}
    for bad in ("1:2,x", "1", "-1:2", "1:2:3", "99999999999:1"):
        with pytest.raises(ValueError):
            decode(bad)


def test_percentiles_follow_locusts_rule() -> None:
    # The largest value with at most int(n·q) requests below it, as Locust computes them.
    histogram = {10: 90, 100: 10}
    assert percentile(histogram, 0.5) == 10
    assert percentile(histogram, 0.89) == 10
    assert percentile(histogram, 0.9) == 100
    assert percentile(dict.fromkeys(range(1, 101), 1), 0.95) == 96
    assert percentile({}, 0.5) is None
    numbers = summary(histogram)
    assert numbers["min"] == 10 and numbers["max"] == 100 and numbers["avg"] == 19


def test_constant_load_gives_a_flat_rate_and_exact_windows() -> None:
    builder = WindowBuilder("r", origin=ORIGIN, interval=2)
    seconds = {ORIGIN + i: [entry(100)] for i in range(10)}
    parsed = parse_seconds(batch(seconds, ORIGIN + 7))
    builder.add(parsed)
    ready = builder.ready(parsed)
    assert [s.seq for s in ready] == [1, 2, 3]  # windows ending at +2, +4, +6
    assert all(s.totalRPS == 100 and s.intervalRequests == 200 for s in ready)
    assert ready[0].windowStart.timestamp() == ORIGIN
    assert ready[-1].windowEnd.timestamp() == ORIGIN + 6
    assert ready[-1].percentileWindow == "interval" and ready[-1].p50ResponseMs == 10
    rest = parse_seconds(batch(seconds, ORIGIN + 10, builder.cursor), after=builder.cursor)
    builder.add(rest)
    final = builder.ready(rest, final=True)
    assert [s.seq for s in final] == [4, 5]
    assert builder.total_requests == 1000 == sum(s.intervalRequests for s in ready + final)
    for snapshot in ready + final:  # what the collector builds survives validation
        assert MetricSnapshot.model_validate(snapshot.model_dump()) == snapshot


def test_a_latency_step_shows_in_the_first_window_after_it() -> None:
    builder = WindowBuilder("r", origin=ORIGIN, interval=2)
    seconds = {ORIGIN + i: [entry(50, 10 if i < 4 else 100)] for i in range(8)}
    parsed = parse_seconds(batch(seconds, ORIGIN + 8))
    builder.add(parsed)
    ready = builder.ready(parsed)
    assert [s.p50ResponseMs for s in ready] == [10, 10, 100, 100]


def test_a_window_without_requests_is_stored_as_zero() -> None:
    builder = WindowBuilder("r", origin=ORIGIN, interval=1)
    parsed = parse_seconds(batch({ORIGIN: [entry(5)], ORIGIN + 2: [entry(5)]}, ORIGIN + 3))
    builder.add(parsed)
    ready = builder.ready(parsed)
    assert [s.intervalRequests for s in ready] == [5, 0, 5]
    assert ready[1].p50ResponseMs is None and ready[1].totalRPS == 0


def test_resuming_after_a_take_over_continues_the_sums() -> None:
    first = WindowBuilder("r", origin=ORIGIN, interval=2)
    seconds = {ORIGIN + i: [entry(10, name=f"/{i % 2}")] for i in range(6)}
    parsed = parse_seconds(batch(seconds, ORIGIN + 4))
    first.add(parsed)
    stored = [s.model_dump() for s in first.ready(parsed)]
    state = resume_state(stored[-1])
    state["request_totals"] = {("GET", "/0"): (20, 0), ("GET", "/1"): (20, 0)}
    second = WindowBuilder("r", origin=ORIGIN, interval=2, **state)
    assert second.cursor == ORIGIN + 3
    rest = parse_seconds(batch(seconds, ORIGIN + 6, second.cursor), after=second.cursor)
    second.add(rest)
    final = second.ready(rest, final=True)
    assert [s.seq for s in final] == [3]
    assert second.total_requests == 60
    assert {i.name: i.numRequests for i in final[0].requestStats} == {"/0": 30, "/1": 30}


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 500), min_size=1, max_size=40),
    interval=st.integers(1, 7),
    cut=st.integers(0, 40),
)
def test_summed_intervals_always_equal_the_seconds(counts, interval, cut) -> None:
    seconds = {ORIGIN + i: [entry(n)] for i, n in enumerate(counts) if n}
    end = ORIGIN + len(counts)
    builder = WindowBuilder("r", origin=ORIGIN, interval=interval)
    snapshots = []
    middle = parse_seconds(batch(seconds, min(end, ORIGIN + cut)))
    builder.add(middle)
    snapshots += builder.ready(middle)
    last = parse_seconds(batch(seconds, end, builder.cursor), after=builder.cursor)
    builder.add(last)
    snapshots += builder.ready(last, final=True)
    assert sum(s.intervalRequests for s in snapshots) == sum(counts)
    assert [s.seq for s in snapshots] == list(range(1, len(snapshots) + 1))


BAD = {
    "not the plugin": {"plugin": "other"},
    "string count": {"seconds": [{"t": ORIGIN, "entries": [["GET", "/", "5", 0, []]]}]},
    "negative": {"seconds": [{"t": ORIGIN, "entries": [["GET", "/", -5, 0, []]]}]},
    "huge": {"seconds": [{"t": ORIGIN, "entries": [["GET", "/", 10**30, 0, []]]}]},
    "nan": {"now": float("nan")},
    "more failures": {"seconds": [{"t": ORIGIN, "entries": [["GET", "/", 1, 2, []]]}]},
    "histogram too big": {"seconds": [{"t": ORIGIN, "entries": [["GET", "/", 1, 0, [[1, 5]]]]}]},
    "out of order": {"seconds": [{"t": ORIGIN + 1, "entries": []}, {"t": ORIGIN, "entries": []}]},
    "not complete": {"seconds": [{"t": ORIGIN + 50, "entries": []}]},
    "dict state": {"state": {"x": 1}},
    "bool count": {"user_count": True},
    "too many": {"seconds": [{"t": ORIGIN + i, "entries": []} for i in range(3601)]},
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_impossible_plugin_answers_are_refused(case) -> None:
    payload = batch({}, ORIGIN + 10)
    payload.update(BAD[case])
    payload.setdefault("plugin", "loadmgr")
    if case == "too many":
        payload["complete"] = ORIGIN + 4000
    with pytest.raises(InvalidPayload):
        parse_seconds(payload)


def test_an_unknown_protocol_version_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_seconds(batch({}, ORIGIN, version=99))
    assert "protocol 99" in caught.value.message and caught.value.hint


def test_an_answer_past_its_total_entries_is_refused_before_any_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """590 seconds of 1,100 names, each second within MAX_ENTRIES: refused as a whole,
    before one entry is built (parsing stays bounded in time and memory)."""
    from loadmgr.locust import seconds as module

    assert 1_100 <= module.MAX_ENTRIES and 590 * 1_100 > module.MAX_ANSWER_ENTRIES
    names = [entry(1, name=f"/{i}") for i in range(1_100)]
    payload = batch({ORIGIN + t: names for t in range(590)}, ORIGIN + 600)
    built: list[Any] = []
    real_entry = module._entry
    monkeypatch.setattr(module, "_entry", lambda *a: built.append(a) or real_entry(*a))
    with pytest.raises(InvalidPayload) as caught:
        parse_seconds(payload)
    assert "entries in one answer" in caught.value.message
    assert built == []
    # A real answer at the bound is taken: what the collector asks for, full every second.
    full = [entry(1, name=f"/{i}") for i in range(module.PLUGIN_KEYS_PER_SECOND)]
    ask = module.ASK_SECONDS
    parsed = parse_seconds(batch({ORIGIN + t: full for t in range(ask)}, ORIGIN + ask))
    assert sum(len(s.entries) for s in parsed.seconds) == module.MAX_ANSWER_ENTRIES


def test_the_bound_holds_what_the_plugin_and_the_collector_can_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loadmgr.locust import seconds as module
    from loadmgr.service.collection.sources import SECONDS_PER_ASK
    from tests.unit.test_plugin_logic import StubEvents, load_plugin

    plugin = load_plugin(monkeypatch, StubEvents())
    assert module.PLUGIN_KEYS_PER_SECOND == plugin.MAX_KEYS_PER_SECOND + 1  # and "(other)"
    assert SECONDS_PER_ASK * module.PLUGIN_KEYS_PER_SECOND <= module.MAX_ANSWER_ENTRIES
