"""Where a collector's intervals come from: the loadmgr plugin, or `/stats/requests`.

Both are polled every second and hand back the intervals that became complete, so a
collector's loop is the same for both. The plugin gives exact windows of whole seconds;
without it, intervals are counter deltas between real changes of the master's counters,
stored at the requested cadence, never a cached duplicate (docs/locust-api.md, "Statistics").

Locust tells its users and state as they are when asked, and a window is stored a poll or
more after it ended (the run's last ones only after the stop): each source keeps what its
polls saw (`Sightings`), so an interval's users, state and load generator's health
(`generator`: its workers' CPU, read at every poll) are those of its own window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from loadmgr.locust.protocol import IDLE_STATES
from loadmgr.locust.seconds import ASK_SECONDS, LocustRestarted, SecondsBatch, parse_seconds
from loadmgr.models import MetricSnapshot, utcnow
from loadmgr.models.stats.generator import (
    SATURATION_CPU_PCT,
    GeneratorReading,
    interval_generator,
    read_generator,
)
from loadmgr.service.collection.windows import WindowBuilder

if TYPE_CHECKING:
    from loadmgr.locust.client import LocustClient
    from loadmgr.locust.stats import SnapshotBuilder

POLL_SEC = 1.0
# Seconds per ask: a real answer then stays within parse_seconds' MAX_ANSWER_ENTRIES.
SECONDS_PER_ASK = ASK_SECONDS
# Asks per poll: a take-over after an hour catches up over a few polls, as its windows do
# (windows.MAX_WINDOWS_PER_POLL), each poll parsing a bounded number of entries.
MAX_ASKS = 6


@dataclass(frozen=True)
class Sighting:
    """What one poll saw the cluster doing, and when (seconds since the epoch)."""

    at: float
    users: int
    state: str
    workers: int | None
    generator: GeneratorReading | None = None


class Sightings:
    """The polls' sightings of the cluster, to give each interval its own window's users,
    state and workers (docs/metrics.md, "Intervals"): the last seen within its window while
    loading; else the last seen within it; else the last seen before it (a window no poll
    fell in). Without any, the interval keeps what it was built with. Its `generator` is
    every reading within its window (else the last before it), summed up with the run's
    saturation level (`interval_generator`)."""

    def __init__(self, saturation_pct: float = SATURATION_CPU_PCT) -> None:
        self._seen: list[Sighting] = []
        self.saturation_pct = saturation_pct

    def note(
        self,
        at: float,
        users: int,
        state: str,
        workers: int | None,
        generator: GeneratorReading | None = None,
    ) -> None:
        self._seen.append(Sighting(at, users, state, workers, generator))

    def apply(self, snapshots: list[MetricSnapshot]) -> list[MetricSnapshot]:
        for snapshot in snapshots:
            if snapshot.windowStart is None or snapshot.windowEnd is None:
                continue
            start, end = snapshot.windowStart.timestamp(), snapshot.windowEnd.timestamp()
            snapshot.generator = self._generator(start, end, snapshot.intervalSec)
            sighting = self._within(start, end)
            if sighting is None:
                continue
            snapshot.currentUsers, snapshot.state = sighting.users, sighting.state
            if snapshot.workerCount is not None and sighting.workers is not None:
                snapshot.workerCount = sighting.workers
        if snapshots and snapshots[-1].windowEnd is not None:
            self._forget_before(snapshots[-1].windowEnd.timestamp())
        return snapshots

    def _within(self, start: float, end: float) -> Sighting | None:
        inside = [s for s in self._seen if start <= s.at <= end]
        loading = [s for s in inside if s.state not in IDLE_STATES]
        before = [s for s in self._seen if s.at < start]
        chosen = loading or inside or before
        return chosen[-1] if chosen else None

    def _generator(self, start: float, end: float, seconds: float) -> dict[str, Any] | None:
        inside = [s.generator for s in self._seen if start <= s.at <= end and s.generator]
        if not inside:
            before = [s.generator for s in self._seen if s.at < start and s.generator]
            inside = before[-1:]
        return interval_generator(inside, seconds, self.saturation_pct) if inside else None

    def _forget_before(self, moment: float) -> None:
        """Keep what later windows may need: the sightings from `moment` on, and the last
        one before it (a window no poll falls in takes it)."""
        earlier = [s for s in self._seen if s.at < moment]
        self._seen = earlier[-1:] + [s for s in self._seen if s.at >= moment]


@dataclass
class Poll:
    """What one poll found: complete intervals, and the cluster's state."""

    snapshots: list[MetricSnapshot]
    state: str
    users: int
    workers: int | None
    payload: dict[str, Any] = field(default_factory=dict)  # /stats/requests only
    events: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail) for the run
    stop_cause: str | None = None  # who stopped the test (the plugin only; see SecondsBatch)
    shape: str | None = None  # the load shape class Locust runs (the plugin only)

    @property
    def idle(self) -> bool:
        return self.state in IDLE_STATES


class PluginSource:
    """Exact windows from the plugin's per-second histograms."""

    kind = "plugin"

    def __init__(
        self,
        client: LocustClient,
        builder: WindowBuilder,
        saturation_pct: float = SATURATION_CPU_PCT,
    ) -> None:
        self.client = client
        self.builder = builder
        self.last_batch: SecondsBatch | None = None
        self.sightings = Sightings(saturation_pct)

    @classmethod
    def first_batch(cls, client: LocustClient) -> SecondsBatch:
        """The plugin's current answer (for the test's start second), nothing consumed."""
        return parse_seconds(client.seconds(after=None, limit=1))

    def _fetch(self) -> SecondsBatch:
        batch: SecondsBatch | None = None
        for _ in range(MAX_ASKS):
            after = self.builder.cursor
            # Asked merged into the run's windows on the master (a plugin that cannot,
            # an older one, answers per second: both read the same, issue 26).
            windows = (self.builder.origin, self.builder.interval)
            answer = self.client.seconds(after=after, limit=SECONDS_PER_ASK, windows=windows)
            batch = parse_seconds(answer, after, windows)
            if batch.oldest is not None and batch.oldest > after + 1 and after >= 0:
                self.builder.lost_seconds += batch.oldest - after - 1
            self.builder.add(batch)
            self.sightings.note(
                batch.now, batch.user_count, batch.state, batch.worker_count, batch.generator
            )
            if not batch.more:
                break
        assert batch is not None
        self.last_batch = batch
        return batch

    def poll(self) -> Poll:
        batch = self._fetch()
        # Once the test stopped, the last windows wait for `final` (after the settle).
        ready = [] if batch.state in IDLE_STATES else self.builder.ready(batch)
        events = [] if self.builder.clock is None else self.builder.clock.take_events()
        snapshots = self.sightings.apply(ready)
        return Poll(
            snapshots,
            batch.state,
            batch.user_count,
            batch.worker_count,
            events=events,
            stop_cause=batch.stop_cause,
            shape=batch.shape,
        )

    def final(self, deadline_sec: float = 15.0) -> list[MetricSnapshot]:
        """The last windows, once the test stopped and every worker's last report is in
        (the plugin says `final`; a worker's last report comes up to 3 s after the stop)."""
        deadline = time.monotonic() + deadline_sec
        batch = self._fetch()
        while not (batch.final and batch.state in IDLE_STATES) and time.monotonic() < deadline:
            time.sleep(0.2)
            batch = self._fetch()
        last = self.sightings.apply(self.builder.ready(batch, final=True))
        if last:
            last[-1].metadata["final"] = True  # the run's last interval
        return last


class StatsSource:
    """Counter deltas of `/stats/requests`, at the requested cadence."""

    kind = "stats"

    def __init__(
        self,
        client: LocustClient,
        builder: SnapshotBuilder,
        interval: float,
        saturation_pct: float = SATURATION_CPU_PCT,
    ) -> None:
        self.client = client
        self.builder = builder
        self.interval = interval
        self._seen: dict[str, Any] | None = None  # the newest distinct payload
        self._seen_at = utcnow()  # when it first appeared: when its counters really changed
        self._emitted_at = time.monotonic()
        self.sightings = Sightings(saturation_pct)

    def _fetch(self) -> dict[str, Any]:
        from loadmgr.locust.validation import check_stats

        payload = check_stats(self.client.stats())
        if payload != self._seen:
            if self._seen is not None and self.builder.is_reset(payload):
                raise LocustRestarted(
                    "Locust's counters went backwards mid-run: its master restarted, or its "
                    "stats were reset outside loadmgr"
                )
            self._seen, self._seen_at = payload, utcnow()
            poll = _stats_poll(payload, [])
            at = self._seen_at.timestamp()
            # A master's worker list (none on a standalone): its workers' CPU and memory.
            reading = read_generator(at, poll.state, payload.get("workers"))
            self.sightings.note(at, poll.users, poll.state, poll.workers, reading)
        return payload

    def poll(self) -> Poll:
        payload = self._fetch()
        snapshots = []
        due = time.monotonic() - self._emitted_at >= self.interval
        # A cached (identical) payload is no interval: wait for the counters to move.
        if due and payload != self.builder.last_payload:
            snapshot = self.builder.build(payload, self._seen_at)
            if snapshot is not None:
                snapshots.append(snapshot)
                self._emitted_at = time.monotonic()
        return _stats_poll(payload, self.sightings.apply(snapshots))

    def final(self, payload: dict[str, Any]) -> list[MetricSnapshot]:
        """The interval of the requests no poll had seen yet, from the final payload."""
        last = self.builder.build(payload, utcnow(), force=True)
        if last is None:
            return []
        last.metadata["final"] = True
        return self.sightings.apply([last])


def _stats_poll(payload: dict[str, Any], snapshots: list[MetricSnapshot]) -> Poll:
    workers = payload.get("worker_count")
    return Poll(
        snapshots,
        str(payload.get("state")),
        int(payload.get("user_count") or 0),
        int(workers) if isinstance(workers, (int, float)) else None,
        payload,
    )


def moment(value: Any, fallback: datetime) -> datetime:
    """A stored date as an aware datetime, or `fallback`."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return fallback
