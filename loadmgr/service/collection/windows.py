"""Intervals from the plugin's seconds: aligned windows of whole seconds, exact numbers.

Window k of a run covers the seconds [origin + k·interval, origin + (k+1)·interval), where
`origin` is the second the test started on the master. A window is stored once every
second in it is complete (the plugin's watermark), so its counts, rates and percentiles are
those of exactly that window: no cache, no aliasing. The window's histogram is kept in the
document (`hist`), so percentiles over any run window can be merged later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from loadmgr.locust.protocol import AGGREGATED, IDLE_STATES
from loadmgr.locust.seconds import InvalidPayload, SecondsBatch
from loadmgr.locust.stats import RunIntervals
from loadmgr.models import MetricSnapshot, RequestStats
from loadmgr.models.documents.runs import built_request_stats
from loadmgr.models.histogram import (
    Histogram,
    interval_latencies,
    merge_into,
    merge_steps_into,
    steps_summary_and_text,
    summary_and_text,
)
from loadmgr.service.collection.clocks import WINDOW_SLACK_SEC, RunClock

Key = tuple[str, str]  # (method, name)

# How long past its duration a run's seconds may still come (Locust stopping late, the
# workers' last reports): a second beyond is a lie. It bounds the windows a run can have,
# so no answer can make the collector build windows without end.
WINDOW_GRACE_SEC = 600
# Windows one poll may store: a take-over after an hour catches up over a few polls, and a
# signal is heard between them.
MAX_WINDOWS_PER_POLL = 600


def max_windows(duration_sec: float, interval: int) -> int:
    """The most windows a run of `duration_sec` can have, at `interval`."""
    return int((duration_sec + WINDOW_GRACE_SEC) // interval) + 2


@dataclass
class _Counts:
    requests: int = 0
    failures: int = 0
    histogram: Histogram = field(default_factory=dict)
    # The only histogram added so far, when it came as steps (a window the plugin merged):
    # kept as it is, so the window's summary needs no dict and no sort.
    steps: list[int] | None = None

    def add(self, requests: int, failures: int, histogram: Histogram | list[int]) -> None:
        self.requests += requests
        self.failures += failures
        if type(histogram) is list:
            if self.steps is None and not self.histogram:
                self.steps = histogram
                return
            merge_steps_into(self.histogram, histogram)
        else:
            merge_into(self.histogram, histogram)  # type: ignore[arg-type]
        if self.steps is not None:
            merge_steps_into(self.histogram, self.steps)
            self.steps = None

    def merged(self) -> Histogram | list[int]:
        return self.histogram if self.steps is None else self.steps

    def summary_and_text(self) -> tuple[dict[str, float | None], str]:
        if self.steps is not None:
            return steps_summary_and_text(self.steps)
        return summary_and_text(self.histogram)


def _moment(second: int) -> datetime:
    return datetime.fromtimestamp(second, tz=timezone.utc)


class WindowBuilder(RunIntervals):
    """Folds the plugin's seconds into window documents, in order, each exactly once."""

    def __init__(
        self,
        run_id: str,
        *,
        origin: int,
        interval: int,
        tenant_id: str | None = None,
        env_id: str | None = None,
        next_index: int = 0,
        totals: tuple[int, int] = (0, 0),
        request_totals: dict[Key, tuple[int, int]] | None = None,
        max_windows: int | None = None,
        clock: RunClock | None = None,
    ) -> None:
        super().__init__(run_id, tenant_id, env_id)
        # None: unbounded (tests that fold seconds by hand); a collector always bounds it.
        self.max_windows = max_windows
        # None: answers' clocks taken as they come (tests); a collector always checks them.
        self.clock = clock
        self.present: int | None = None  # the master's present second, as last checked
        self.origin = origin
        self.interval = interval
        self.next_index = next_index  # windows before this one are stored already
        # The last second folded in. From the start, every second the plugin holds is
        # asked for: it holds this test's only (emptied at its start), and a worker whose
        # clock runs behind the master's stamps its first seconds before the test's start.
        self.cursor = origin + next_index * interval - 1 if next_index else -1
        self.total_requests, self.total_failures = totals
        self._request_totals: dict[Key, tuple[int, int]] = dict(request_totals or {})
        self._open: dict[int, dict[Key, _Counts]] = {}
        self.late_seconds = 0  # seconds that arrived for a window already stored
        self.lost_seconds = 0  # seconds the plugin had evicted before anyone read them
        self.last_data_second: int | None = None

    def window_of(self, second: int) -> int:
        return max(0, (second - self.origin) // self.interval)

    def window_end(self, index: int) -> int:
        return self.origin + (index + 1) * self.interval

    def _check_within_run(self, index: int, what: str) -> None:
        if self.max_windows is not None and index >= self.max_windows:
            raise InvalidPayload(
                f"{what} is {(index * self.interval):,} s after the test started, "
                f"past the run's end by more than {WINDOW_GRACE_SEC} s"
            )

    def add(self, batch: SecondsBatch) -> None:
        """Fold a batch's complete seconds into their windows.

        Everything is checked before anything is folded: a lie changes nothing. A second
        stamped after the master's present (workers' clocks ahead) counts in the present's
        window; the cursor keeps the plugin's own numbering."""
        present = None if self.clock is None else self.clock.check(batch)
        if batch.seconds:
            last = batch.seconds[-1].t if present is None else min(batch.seconds[-1].t, present)
            self._check_within_run(self.window_of(last), f"second {last}")
        self.present = present
        for second in batch.seconds:
            if second.t <= self.cursor:
                continue  # already folded (an overlapping answer after a retry)
            if second.first is not None:
                self._check_merged(second.first, second.t)
            # Seconds the plugin merged are all of one window, so each lands where it would
            # alone: in that window, or all in the present's when stamped after it.
            stamped = second.t if present is None else min(second.t, present)
            if stamped < self.origin:  # a worker's clock behind: counted in the first window
                if self.clock is not None:
                    self.clock.note_behind(self.origin - stamped)
                stamped = self.origin
            index = self.window_of(stamped)
            if index < self.next_index:
                # Cannot happen with the plugin's watermark unless a clock jumped: keep the
                # requests (the sums must hold) in the next window, and say so.
                self.late_seconds += second.with_data
                index = self.next_index
            window = self._open.setdefault(index, {})
            for entry in second.entries:
                counts = window.setdefault((entry.method, entry.name), _Counts())
                counts.add(entry.requests, entry.failures, entry.histogram)
            self.cursor = second.t
            if second.entries:
                self.last_data_second = stamped
        if batch.state not in IDLE_STATES:
            # Nothing more will come for the seconds before the watermark. Once the test
            # has stopped, workers' last reports may still be on their way: the cursor
            # stays at the last second received, so they are asked for again.
            self.cursor = max(self.cursor, batch.complete - 1)

    def _check_merged(self, first: int, last: int) -> None:
        if first <= self.cursor or self.window_of(first) != self.window_of(last):
            raise InvalidPayload(
                f"the loadmgr plugin merged seconds {first} to {last}, which are not of "
                f"one window after second {self.cursor}"
            )

    def ready(self, batch: SecondsBatch, *, final: bool = False) -> list[MetricSnapshot]:
        """Every window complete by `batch.complete`, in order.

        Once the test has stopped (or with `final`), windows end with the last second of
        data: no empty window after the run, and the last one only as long as it lasted.
        """
        ended = final or batch.state in IDLE_STATES
        complete = batch.complete if self.present is None else min(batch.complete, self.present)
        latest = self._latest_end()
        snapshots: list[MetricSnapshot] = []
        while True:
            index = self.next_index
            window_start = self.origin + index * self.interval
            window_end = self.window_end(index)
            if ended:
                last = self.last_data_second
                if last is None or window_start > last:
                    break
                window_end = min(window_end, last + 1)
            if not final and (
                window_end > complete
                or window_end > latest
                or len(snapshots) >= MAX_WINDOWS_PER_POLL
            ):
                break
            self._check_within_run(index, f"the plugin's watermark {batch.complete}")
            snapshots.append(self._emit(index, window_end, batch))
        return snapshots

    def _latest_end(self) -> float:
        """The latest a window may end: where the run is by this machine's wall clock (a
        little slack). So one poll stores at most the windows that the wall time since the
        last stored one can hold, whatever the answer says."""
        expected = None if self.clock is None else self.clock.expected_now()
        return float("inf") if expected is None else expected + WINDOW_SLACK_SEC

    def _emit(self, index: int, window_end: int, batch: SecondsBatch) -> MetricSnapshot:
        window = self._open.pop(index, {})
        window_start = self.origin + index * self.interval
        seconds = max(1, window_end - window_start)
        aggregate = _Counts()
        items = []
        for key in sorted(window):
            counts = window[key]
            aggregate.add(counts.requests, counts.failures, counts.merged())
            before = self._request_totals.get(key, (0, 0))
            cumulative = (before[0] + counts.requests, before[1] + counts.failures)
            self._request_totals[key] = cumulative
            items.append(_request_item(key, counts, cumulative, seconds))
        self.total_requests += aggregate.requests
        self.total_failures += aggregate.failures
        numbers, text = aggregate.summary_and_text()
        self.next_index = index + 1
        # Built from numbers checked at the boundary; tests round-trip the result.
        return self.snapshot(
            aggregate.requests,
            aggregate.failures,
            seconds,
            timestamp=_moment(window_end),
            seq=index + 1,
            windowStart=_moment(window_start),
            windowEnd=_moment(window_end),
            intervalSec=float(seconds),
            percentileWindow="interval",
            totalRequests=self.total_requests,
            totalFailures=self.total_failures,
            **interval_latencies(numbers),
            hist=text,
            currentUsers=batch.user_count,
            workerCount=batch.worker_count,
            state=batch.state,
            requestStats=items,
            metadata={},
        )


def _request_item(
    key: Key, counts: _Counts, cumulative: tuple[int, int], seconds: int
) -> RequestStats:
    numbers, text = counts.summary_and_text()
    method, name = key
    # Every field, in the model's order, each of its type (tests compare the result with
    # the validated model's).
    return built_request_stats(
        {
            "method": method,
            "name": name if name or method else AGGREGATED,
            "numRequests": cumulative[0],
            "numFailures": cumulative[1],
            "avgResponseTimeMs": numbers["avg"] or 0.0,
            "minResponseTimeMs": numbers["min"] or 0.0,
            "maxResponseTimeMs": numbers["max"] or 0.0,
            "p50ResponseMs": numbers["p50"],
            "p95ResponseMs": numbers["p95"],
            "requestsPerSec": counts.requests / seconds,
            "p99ResponseMs": numbers["p99"],
            "p90ResponseMs": numbers["p90"],
            "failuresPerSec": counts.failures / seconds,
            "intervalRequests": counts.requests,
            "intervalFailures": counts.failures,
            "avgContentLength": 0.0,
            "hist": text,
        }
    )


def resume_state(last: dict[str, Any] | None) -> dict[str, Any]:
    """WindowBuilder arguments that continue after the last stored window `last`."""
    if not last:
        return {"next_index": 0, "totals": (0, 0), "request_totals": {}}
    request_totals = {
        (str(item.get("method") or ""), str(item.get("name") or "")): (
            int(item.get("numRequests") or 0),
            int(item.get("numFailures") or 0),
        )
        for item in last.get("requestStats") or []
    }
    return {
        "next_index": int(last.get("seq") or 0),
        "totals": (int(last.get("totalRequests") or 0), int(last.get("totalFailures") or 0)),
        "request_totals": request_totals,
    }
