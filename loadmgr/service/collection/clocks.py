"""Whether the times in a plugin answer can be true, and the present they allow.

A plugin answer carries three clocks: the master's `now`, its `test_started`, and
`complete`, the smallest watermark of the workers (each worker's own clock). Trusted as
they come, one number far from the others made a collector store a window for every
second between them (docs/reliability.md). The rules, checked before anything of an answer
is used (a refused answer changes nothing and counts toward --lost-timeout, like any
other nonsense):

- The test is the run's: a `test_started` other than the run's (or none, once there was
  one) is a master that restarted (`LocustRestarted`), not a lie to refuse.
- The master's `now` is where the run should be by this machine's clock (the run's
  origin plus the time since it started here, on a monotonic clock) within
  `MASTER_CLOCK_SLACK_SEC`.
- `complete` is at most `MAX_CLOCK_AHEAD_SEC` past the master's `now`. Less than that
  but more than `CLOCK_NOTICE_SEC` is workers whose clocks run ahead (all of them: the
  watermark is the smallest): their seconds are counted in the window of the master's
  present, never in windows of the future, and the run records it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loadmgr.locust.seconds import InvalidPayload, LocustRestarted, SecondsBatch

MASTER_CLOCK_SLACK_SEC = 120.0
MAX_CLOCK_AHEAD_SEC = 600
CLOCK_NOTICE_SEC = 5
# A window may end this far past where the run is by this machine's clock (the swarm's
# round trip, the master's test start a moment after it): no more, however an answer lies.
WINDOW_SLACK_SEC = 5.0


@dataclass
class RunClock:
    """The run's start on the master's clock and on this machine's, and what was noted."""

    origin: int  # the second the test started on the master
    test_started: int | None = None  # the master's test start second; None: the first seen
    started_wall: float | None = None  # this machine's wall clock at the run's start
    clock: Callable[[], float] = time.time  # this machine's wall clock
    # What measures the time since the start: a monotonic clock, which a step of the wall
    # clock (NTP correcting a host that ran ahead, a `date -s`) does not move. Measured on
    # the wall clock, such a step mid-run made every true answer a lie.
    ticker: Callable[[], float] = time.monotonic
    ahead_noted: bool = False
    behind_noted: bool = False
    events: list[tuple[str, str]] = field(default_factory=list)  # to record on the run
    _start_tick: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.started_wall is not None:
            self._start_tick = self.ticker() - (self.clock() - self.started_wall)

    def expected_now(self) -> float | None:
        """Where the run is now on the master's clock, by the time this machine has seen
        pass since the run's start."""
        if self._start_tick is None:
            return None
        return self.origin + (self.ticker() - self._start_tick)

    def check(self, batch: SecondsBatch) -> int:
        """The present second of the master for `batch` (later seconds count in it);
        LocustRestarted or InvalidPayload for an answer that is not this run's or not true."""
        self._same_test(batch)
        expected = self.expected_now()
        if expected is not None and abs(batch.now - expected) > MASTER_CLOCK_SLACK_SEC:
            raise InvalidPayload(
                f"the plugin's clock says {batch.now - self.origin:,.0f} s since the test "
                f"started, where {expected - self.origin:,.0f} s have passed"
            )
        present = int(batch.now)
        ahead = batch.complete - batch.now
        if ahead > MAX_CLOCK_AHEAD_SEC:
            raise InvalidPayload(
                f"the plugin calls seconds up to {ahead:,.0f} s after its own clock's now complete"
            )
        if ahead > CLOCK_NOTICE_SEC and not self.ahead_noted:
            self.ahead_noted = True
            self.events.append(
                (
                    "clock-ahead",
                    f"the workers' clocks run about {ahead:.0f} s ahead of the master's: "
                    "their seconds are counted when they arrive (sync the clocks with NTP)",
                )
            )
        if self.test_started is None:
            self.test_started = batch_start(batch)
        return present

    def note_behind(self, seconds: int) -> None:
        """A second stamped `seconds` before the test's start: a worker's clock behind the
        master's. Its requests count in the first window; the run records it once."""
        if not self.behind_noted:
            self.behind_noted = True
            self.events.append(
                (
                    "clock-behind",
                    f"a worker's clock runs {seconds} s behind the master's: its seconds before "
                    "the start count in the first window (use NTP)",
                )
            )

    def _same_test(self, batch: SecondsBatch) -> None:
        started = batch_start(batch)
        if self.test_started is None:
            return  # the first answer's is taken once the answer is known true
        if started != self.test_started:
            now = (
                "knows no test"
                if started is None
                else f"says its test started {started - self.test_started:+,} s from the run's"
            )
            raise LocustRestarted(
                f"Locust's master restarted mid-run (or another test was started on it): it {now}"
            )

    def take_events(self) -> list[tuple[str, str]]:
        taken, self.events = self.events, []
        return taken


def batch_start(batch: SecondsBatch) -> int | None:
    """The second the master's test started, as an answer says it."""
    return None if batch.test_started is None else int(batch.test_started)
