"""Plugin answers whose clocks lie, run ahead or belong to another test (issue 21, items 1
and 5): refused or clamped before anything is folded, and no window is ever stored past
where the run is by the collector's own wall clock."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.locust.seconds import MAX_EPOCH, InvalidPayload, LocustRestarted, parse_seconds
from loadmgr.service.collection.clocks import (
    CLOCK_NOTICE_SEC,
    MASTER_CLOCK_SLACK_SEC,
    MAX_CLOCK_AHEAD_SEC,
    WINDOW_SLACK_SEC,
    RunClock,
)
from loadmgr.service.collection.events import worker_change
from loadmgr.service.collection.windows import MAX_WINDOWS_PER_POLL, WindowBuilder, max_windows

ORIGIN = 1_800_000_000
WALL = 1_700_000_000.0  # this machine's wall clock at the run's start: another clock


class Wall:
    """The collector's wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = WALL

    def __call__(self) -> float:
        return self.now


def answer(now: float, complete: int, seconds: dict[int, int], **extra: Any) -> Any:
    """The plugin's answer at master time `now`: `seconds` maps t to its requests."""
    return {
        "plugin": "loadmgr",
        "version": 1,
        "now": now,
        "complete": complete,
        "oldest": None,
        "test_started": ORIGIN + 0.4,
        "state": "running",
        "user_count": 5,
        "worker_count": 2,
        "more": False,
        "seconds": [
            {"t": t, "entries": [["GET", "/", n, 0, [[10, n]]]]} for t, n in sorted(seconds.items())
        ],
        **extra,
    }


def builder(wall: Wall, interval: int, duration: int = 7200) -> WindowBuilder:
    clock = RunClock(ORIGIN, ORIGIN, started_wall=WALL, clock=wall, ticker=wall)
    return WindowBuilder(
        "run",
        origin=ORIGIN,
        interval=interval,
        clock=clock,
        max_windows=max_windows(duration, interval),
    )


def state_of(windows: WindowBuilder) -> tuple[Any, ...]:
    return (
        windows.cursor,
        windows.next_index,
        windows.total_requests,
        windows.last_data_second,
        dict(windows._open),
        windows.present,
    )


@settings(max_examples=300, deadline=None)
@given(
    elapsed=st.integers(0, 7200),
    now_off=st.one_of(st.floats(-1e7, 1e7), st.floats(-200, 200)),
    ahead=st.one_of(st.integers(-5, 10_000_000), st.integers(-5, 700)),
    interval=st.sampled_from([1, 2, 5, 10]),
    done=st.integers(0, 50),  # windows stored before this answer
)
def test_no_answer_stores_a_window_past_the_wall_clock(elapsed, now_off, ahead, interval, done):
    """Far or near, an answer's `now` and `complete` either are refused (nothing changes:
    a lie, counted toward --lost-timeout) or store only windows that end where the run
    can be by the collector's wall clock, at most MAX_WINDOWS_PER_POLL of them."""
    wall = Wall()
    windows = builder(wall, interval)
    done = min(done, elapsed // interval)
    wall.now = WALL + done * interval
    windows.add(parse_seconds(answer(ORIGIN + done * interval, ORIGIN + done * interval, {})))
    windows.ready(parse_seconds(answer(ORIGIN + done * interval, ORIGIN + done * interval, {})))
    wall.now = WALL + elapsed
    now = max(0.0, ORIGIN + elapsed + now_off)
    complete = min(max(0, math.floor(now) + ahead), MAX_EPOCH)
    seconds = {complete - 1: 7} if complete - 1 > windows.cursor else {}
    batch = parse_seconds(answer(now, complete, seconds), windows.cursor)
    before = state_of(windows)
    lie = abs(now - (ORIGIN + elapsed)) > MASTER_CLOCK_SLACK_SEC or (
        complete - now > MAX_CLOCK_AHEAD_SEC
    )
    if lie:
        with pytest.raises(InvalidPayload):
            windows.add(batch)
        assert state_of(windows) == before
        return
    windows.add(batch)
    stored = windows.ready(batch)
    assert len(stored) <= MAX_WINDOWS_PER_POLL
    for snapshot in stored:
        assert snapshot.windowEnd is not None
        end = snapshot.windowEnd.timestamp()
        assert end <= ORIGIN + elapsed + WINDOW_SLACK_SEC, "a window of the future"
        assert end <= now, "a window past the master's own now"
    if stored:  # the wall time since the last stored window holds them all
        first = stored[0].windowStart
        assert first is not None
        span = ORIGIN + elapsed + WINDOW_SLACK_SEC - first.timestamp()
        assert len(stored) <= span / interval + 1


@settings(max_examples=60, deadline=None)
@given(
    skew=st.integers(0, MAX_CLOCK_AHEAD_SEC - 5),
    interval=st.sampled_from([1, 2, 5]),
    every=st.sampled_from([1, 2, 3]),
    duration=st.integers(10, 90),
    rate=st.integers(1, 20),
)
def test_workers_ahead_of_the_master_are_counted_not_obeyed(skew, interval, every, duration, rate):
    """Every worker's clock `skew` s ahead of the master's: each of their seconds is counted
    once (the run's total is exact), none in a window after the master's now, and the run
    records it once when the skew is more than a notice's worth."""
    wall = Wall()
    windows = builder(wall, interval, duration)
    sent: dict[int, int] = {}
    stored = []
    for moment in range(0, duration + 1, every):
        now = ORIGIN + moment
        wall.now = WALL + moment
        for second in range(moment - every, moment):
            if second >= 0:
                sent[ORIGIN + second + skew] = rate  # stamped with the worker's clock
        complete = now + skew  # the workers' watermark
        shown = {t: n for t, n in sent.items() if windows.cursor < t < complete}
        batch = parse_seconds(answer(now + 0.3, complete, shown), windows.cursor)
        windows.add(batch)
        for snapshot in windows.ready(batch):
            assert snapshot.windowEnd is not None
            assert snapshot.windowEnd.timestamp() <= now + 0.3
            stored.append(snapshot)
    now = ORIGIN + duration + 1
    last = max(sent) + 1
    shown = {t: n for t, n in sent.items() if windows.cursor < t < last}
    batch = parse_seconds(answer(now, last, shown, state="stopped", final=True), windows.cursor)
    windows.add(batch)
    stored += windows.ready(batch, final=True)
    assert sum(s.intervalRequests for s in stored) == sum(sent.values())
    assert all(s.windowEnd.timestamp() <= now + 1 for s in stored if s.windowEnd)
    events = windows.clock.take_events() if windows.clock else []
    assert [kind for kind, _ in events] == (["clock-ahead"] if skew > CLOCK_NOTICE_SEC else [])


@pytest.mark.parametrize(
    "started",
    [ORIGIN + 3000.2, ORIGIN - 3000.0, None, ORIGIN + 1.0],
    ids=["later", "earlier", "none", "a second later"],
)
def test_an_answer_of_another_test_is_a_restart(started):
    wall = Wall()
    windows = builder(wall, 5)
    wall.now = WALL + 20
    before = state_of(windows)
    batch = parse_seconds(
        answer(ORIGIN + 20.5, ORIGIN + 19, {ORIGIN + 18: 3}, test_started=started)
    )
    with pytest.raises(LocustRestarted, match="restarted mid-run"):
        windows.add(batch)
    assert state_of(windows) == before


def test_the_first_answer_names_the_test_when_the_start_did_not():
    wall = Wall()
    clock = RunClock(ORIGIN, None, started_wall=WALL, clock=wall, ticker=wall)
    windows = WindowBuilder("run", origin=ORIGIN, interval=5, clock=clock)
    wall.now = WALL + 10
    windows.add(parse_seconds(answer(ORIGIN + 10.2, ORIGIN + 9, {ORIGIN + 3: 1})))
    assert clock.test_started == ORIGIN
    with pytest.raises(LocustRestarted):
        windows.add(
            parse_seconds(
                answer(ORIGIN + 11.2, ORIGIN + 10, {}, test_started=ORIGIN + 7.0), ORIGIN + 8
            )
        )


@pytest.mark.parametrize(
    ("before", "count", "state", "kind"),
    [
        (2, 1, "running", "worker-lost"),
        (2, 0, "spawning", "worker-lost"),
        (1, 2, "running", "worker-joined"),
        (2, 0, "stopping", None),  # workers leave at a stop, as they should
        (2, 0, "stopped", None),
        (2, 2, "running", "same"),
        (None, 2, "running", "same"),
        (2, None, "running", "same"),
    ],
)
def test_a_worker_change_is_an_event_only_while_loading(before, count, state, kind):
    change = worker_change(before, count, state, {})
    if kind == "same":
        assert change is None
        return
    assert change is not None
    message, event = change
    assert message == f"workers: {before} → {count}"
    assert (event[0] if event else None) == kind


@pytest.mark.parametrize("step", [-3600, -600, -130, 130, 600, 3600])
def test_a_step_of_this_machine_s_wall_clock_mid_run_is_no_lie(step: int) -> None:
    """This machine's wall clock stepped mid-run (NTP correcting a host 10 min ahead, a
    `date -s`): the time since the start is measured on a monotonic clock, so the master's
    honest answers are still taken and their windows stored. Before, every answer after
    the step was refused as a lie, and the healthy run ended `Failed` with its load
    stopped."""
    wall = Wall()
    clock = RunClock(ORIGIN, ORIGIN, started_wall=WALL, clock=wall)  # real monotonic time
    windows = WindowBuilder("run", origin=ORIGIN, interval=1, clock=clock)
    wall.now = WALL + step  # next to no time has passed, but the wall clock says `step`
    batch = parse_seconds(answer(ORIGIN + 2.5, ORIGIN + 2, {ORIGIN: 3, ORIGIN + 1: 4}))
    windows.add(batch)
    stored = windows.ready(batch)
    assert sum(snapshot.intervalRequests for snapshot in stored) == 7


class BufferedPlugin:
    """The plugin's seconds route over a buffer of {t: requests}, as it answers: the
    seconds after `after` and before `complete`, which the test moves by hand."""

    def __init__(self, seconds: dict[int, int]) -> None:
        self.seconds_held = seconds
        self.now = float(ORIGIN)
        self.complete = ORIGIN

    def seconds(
        self, after: int | None = None, limit: int = 600, windows: tuple[int, int] | None = None
    ) -> dict[str, Any]:  # answers per second, as an older plugin (windows ignored)
        low = -1 if after is None else after
        held = {t: n for t, n in self.seconds_held.items() if low < t < self.complete}
        return answer(self.now, self.complete, held)


def test_a_worker_behind_the_master_has_every_request_counted() -> None:
    """A worker whose clock runs behind the master's stamps its first seconds before the
    test's start on the master's clock (and its watermark holds `complete` back). Those
    seconds were never asked for (the first ask began at the start), so their requests
    were missing from the intervals, never from Locust's totals. They are counted in the
    first window, and the run records the skew once."""
    from loadmgr.service.collection.sources import PluginSource

    behind = 20
    # The worker's requests, stamped on its clock: 20 s behind, 30 s of load, 2 a second.
    plugin = BufferedPlugin({ORIGIN - behind + s: 2 for s in range(30)})
    wall = Wall()
    source = PluginSource(plugin, builder(wall, interval=5))  # type: ignore[arg-type]
    stored, events = [], []
    for elapsed in range(1, 40):
        wall.now = WALL + elapsed
        plugin.now = ORIGIN + elapsed + 0.5
        plugin.complete = ORIGIN + elapsed - behind  # the lagging worker's watermark
        if elapsed > 35:
            plugin.complete = ORIGIN + elapsed  # its last report: everything is in
        poll = source.poll()
        stored, events = stored + poll.snapshots, events + poll.events
    assert sum(s.intervalRequests for s in stored) == 60
    assert [kind for kind, _ in events] == ["clock-behind"] and "20 s" in events[0][1]
