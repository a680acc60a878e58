"""A run's life: start Locust (local) and swarm, follow every second, end it recorded.

The collector is the only writer of a run's intervals. Whatever happens (Locust stops by
itself, a user stops it, Ctrl-C, Locust vanishes or talks nonsense, MongoDB hiccups, a
take-over fences it off), the run ends `Finished` or `Failed`, the lease is released and
any Locust it started is stopped.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ClusterBusy, ClusterError, DatabaseError, LoadmgrError
from loadmgr.locust.seconds import LocustRestarted
from loadmgr.models import (
    LOCAL_CLUSTER_ID,
    LoadTestRun,
    LocustCluster,
    MetricSnapshot,
    RunStatus,
    StopReason,
    ThresholdResult,
    utcnow,
)
from loadmgr.service.collection.end_steps import EndPlan
from loadmgr.service.collection.ending import RunEnding, metrics_with_peaks
from loadmgr.service.collection.events import note_workers
from loadmgr.service.collection.settings import (
    CollectorSettings,
    RunObserver,
    beating,
    client_for,
    observer_of,
    recorded_client,
)
from loadmgr.service.collection.sources import POLL_SEC, PluginSource, Poll, StatsSource
from loadmgr.service.collection.spool import SpoolError
from loadmgr.service.collection.startup import (
    new_source,
    plugin_version,
    resumed_source,
    start_local_cluster,
)
from loadmgr.service.collection.user_code import (
    UserExceptions,
    end_of_test,
    load_words,
    seen_shape,
    shape_in_answer,
)
from loadmgr.service.collection.writer import Fenced, IntervalWriter
from loadmgr.service.runs.lease import lease_id, local_master_gone, process_here
from loadmgr.service.runs.local_master import LocalMasterGone
from loadmgr.service.runs.swarm import start_run_swarm

if TYPE_CHECKING:
    from loadmgr.locust.client import LocustClient
    from loadmgr.locust.local import LocalCluster
    from loadmgr.models.documents import LocustfileBundle
    from loadmgr.service.judging.abort_judge import AbortJudge
    from loadmgr.store import Store

START_TIMEOUT_SEC = 60.0
OVERRUN_GRACE_SEC = 5.0  # past the duration, a still-running Locust is stopped by us
HEARTBEAT_MAX_SEC = 5.0


class Collector(RunEnding):
    """Drives one run from `Pending` (or a taken-over `Running`) to its end."""

    def __init__(
        self,
        store: Store,
        run: LoadTestRun,
        *,
        cluster: LocustCluster | None,
        settings: CollectorSettings,
        home: Path,
        observer: RunObserver | None = None,
        stop_event: threading.Event | None = None,
        locustfile: str | LocustfileBundle | None = None,
        end: EndPlan | None = None,
    ) -> None:
        self.store = store
        self.run = run
        self.cluster = cluster
        self.settings = settings
        self.home = home
        self.observer: RunObserver = observer_of(observer)
        self.stop_event = stop_event or threading.Event()
        self.locustfile = locustfile
        # What follows the recorded end, composed by service/lifecycle/ (end_plan()).
        self.end = end or EndPlan()
        self.interrupted = False
        self.skip_if_busy = False  # --if-busy skip: a busy Locust leaves no run behind
        self.writer = IntervalWriter(
            store, run, home=home, interval=settings.interval, observer=self.observer
        )
        self._client: LocustClient | None = None
        self._local: LocalCluster | None = None
        self._source: PluginSource | StatsSource | None = None
        self._workers: int | None = None
        self._started_mono = time.monotonic()
        self._last_stop_sent = 0.0
        self._breach: ThresholdResult | None = None
        self._abort_note: str | None = None
        self.judge: AbortJudge | None = None
        # Server metrics (issue 23): read for each interval on a thread of their own.
        self.reader = (
            self.end.interval_reader(store, run, settings.abort_on_fail)
            if self.end.interval_reader is not None
            else None
        )
        self.user_errors = UserExceptions(run.exceptions, run.exceptionCount)
        if settings.abort_on_fail and run.thresholds:
            from loadmgr.service.judging.abort_judge import AbortJudge, JudgeSettings

            # A taken-over run has finished spawning long ago: every interval counts.
            self.judge = AbortJudge.from_settings(
                run.thresholds,
                JudgeSettings.from_document(run.collector),
                spawn_complete=run.status != RunStatus.PENDING,
            )

    # -- the whole life ------------------------------------------------------------------

    def execute(self) -> LoadTestRun:
        """Launch the run, follow it to its end, record it; never leaves it active."""
        try:
            self.launch()
            return self.follow()
        finally:
            self._cleanup()

    def take_over(self) -> LoadTestRun:
        """Continue collecting a run whose collector died (this one holds the new epoch)."""
        try:
            # An address that is not the run's own master's is never contacted (exit 6).
            connected = self._connect_recorded()
            self.writer.replay_spool()
            self.writer.tally_stored()
            started = self.run.startedAt or self.run.createdAt
            self._started_mono = (
                time.monotonic() - (self.store.server_now() - started).total_seconds()
            )
            try:
                if isinstance(connected, LocalMasterGone):
                    raise connected
                self._source = resumed_source(self.store, connected, self.run, self.settings)
            except ClusterError as exc:
                if self.run.locustClusterId == LOCAL_CLUSTER_ID:
                    # A local Locust dies with the collector that started it.
                    return self._finalize(StopReason.LOST, error=f"Locust was lost: {exc}")
                self.observer.message(f"Locust is not answering ({exc.message}); retrying")
                self._source = None
            self.observer.started(self.run)
            return self.follow()
        finally:
            self._cleanup()

    def finish_orphan(self, reason: StopReason) -> LoadTestRun:
        """Record the end of a run whose collector is gone (`runs stop` on a stale run)."""
        try:
            self.writer.replay_spool()
            self.writer.tally_stored()
            try:
                self._client = recorded_client(self.cluster, self.run, self.stop_event)
                self._source = resumed_source(self.store, self._client, self.run, self.settings)
            except ClusterError as exc:
                return self._finalize(StopReason.LOST, error=f"Locust unreachable: {exc.message}")
            return self._finalize(reason)
        finally:
            self._cleanup()

    def _connect_recorded(self) -> LocustClient | LocalMasterGone:
        """The client for the run's recorded Locust; a local master found gone is returned
        (it died with the collector that started it), an untrusted address raised."""
        try:
            self._client = recorded_client(self.cluster, self.run, self.stop_event)
        except LocalMasterGone as exc:
            return exc
        return self._client

    def launch(self) -> None:
        """Start Locust if local, swarm, and mark the run `Running` once users spawn."""
        try:
            base_url = self._start_cluster()
            self._client = client_for(self.cluster, base_url, self.stop_event)
            plugin = plugin_version(self._client, self.observer)
            self.observer.message(load_words(self.run))
            # With --if-busy wait this also waits for a Locust busy with someone else's
            # test, and never stops a swarm it did not start.
            started = start_run_swarm(
                self.store,
                self.run,
                self._client,
                start_timeout=START_TIMEOUT_SEC,
                worker_wait_sec=10.0,
                notify=self.observer.message,
                stop_event=self.stop_event,
            )
            # Locust's run_time counts from the swarm, so the run's clock does too.
            sent_at, self._started_mono = started.sent_at, started.sent_mono
            self._learn_shape(shape_in_answer(self._client.swarm_answer))
            try:
                self._source = new_source(self._client, self.run, self.settings, plugin, sent_at)
            except LoadmgrError:
                self._stop_locust()  # swarmed already: no load outlives a run that failed
                raise
        except LoadmgrError as exc:
            if isinstance(exc, ClusterBusy) and self.skip_if_busy:
                # --if-busy skip: Locust itself is busy with another test; this run never
                # started, so it leaves no record, like a skip on a held lease.
                self.store.runs.delete_pending(self.run.id)
                self.store.leases.release(lease_id(self.run.locustClusterId), self.run.id)
                raise
            self._record_failure(exc)
            raise
        running = self.store.runs.update(
            self.run.id,
            {
                "status": RunStatus.RUNNING.value,
                # On the server's clock, like heartbeats: a take-over on another host
                # computes how long the run has gone from it.
                "startedAt": self.store.server_now() - (utcnow() - sent_at),
                "heartbeatAt": self.store.server_now(),
                "locustUrl": base_url if self.cluster is None else self.cluster.baseUrl,
                "collectionMode": self._source.kind,
                "collector": self._collector_document(),
                "updatedAt": utcnow(),
            },
            only_if_status=[RunStatus.PENDING.value],
            epoch=self.writer.epoch,
        )
        if running is not None:
            self.run = running
        self.observer.started(self.run)

    def _collector_document(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if isinstance(self._source, PluginSource):
            extra["origin"] = self._source.builder.origin
            clock = self._source.builder.clock
            if clock is not None and clock.test_started is not None:
                extra["testStarted"] = clock.test_started  # a restart is told by it
        if self._local is not None and self._local.pids:
            # So that a take-over knows at once when nothing can answer any more.
            extra["localMaster"] = process_here(self._local.pids[0])
        return self.settings.to_document(**extra)

    def _start_cluster(self) -> str | None:
        """The local cluster's URL once its master and workers are up; None for remote."""
        self.store.runs.update(
            self.run.id,
            {"collector": self.settings.to_document(), "heartbeatAt": self.store.server_now()},
            epoch=self.writer.epoch,
        )
        if self.cluster is not None:
            return None
        self._local = start_local_cluster(
            self.home, self.run, self.locustfile, self.settings, self.observer, self.stop_event
        )
        return self._local.base_url

    # -- following -------------------------------------------------------------------------

    def follow(self) -> LoadTestRun:
        """Poll every second until the run ends; then record its end."""
        try:
            return self._follow()
        except Fenced as exc:
            self.observer.message(exc.message)
            self._wait_out_fenced()
            raise

    def _follow(self) -> LoadTestRun:
        assert self._client is not None
        duration = self.run.durationSeconds
        next_poll = time.monotonic()
        last_beat = 0.0
        failing_since: float | None = None
        last_problem = ""
        beat_every = min(float(self.settings.interval), HEARTBEAT_MAX_SEC)
        beating(self._client, lambda: self.run.status.is_active and self._beat(None), beat_every)
        while True:
            if self.stop_event.wait(max(0.0, next_poll - time.monotonic())):
                self.interrupted = True
                self.observer.message("interrupted: stopping the load and recording the run")
                self._stop_locust()
                return self._finalize(StopReason.USER)
            # After a stall (a paused process), carry on from now: no burst of catch-up polls.
            next_poll = max(next_poll + POLL_SEC, time.monotonic())
            elapsed = time.monotonic() - self._started_mono
            if self._local is not None and self._local.master_exited():
                # Workers without their master would go on loading the target until they
                # noticed: stop every process now, so no load outlives the run.
                self._local.stop()
                self._local = None
                return self._finalize(
                    StopReason.LOST, error="the local Locust master ended unexpectedly"
                )
            asked = time.monotonic()
            try:
                if self._source is None:
                    self._source = resumed_source(self.store, self._client, self.run, self.settings)
                poll = self._source.poll()
                failing_since, last_problem = None, ""
            except LocustRestarted as exc:
                return self._restarted(exc)
            except ClusterError as exc:
                # Silent since the question was asked: an answer that drips in until its
                # deadline counts as no answer for all that time.
                failing_since = failing_since or asked
                silent = time.monotonic() - failing_since
                if elapsed > duration + OVERRUN_GRACE_SEC:
                    self._stop_locust(every=5.0)  # the duration holds even while polls fail
                if silent >= self.settings.lost_timeout:
                    return self._give_up(exc, silent)
                if self._local is None and local_master_gone(self.run.collector):
                    # Taken over: its master died with its collector; nothing to wait for.
                    return self._finalize(
                        StopReason.LOST, error=f"the local Locust master is gone ({exc.message})"
                    )
                if exc.message != last_problem:
                    self.observer.message(f"{exc.message}; retrying")
                    last_problem = exc.message
                if time.monotonic() - last_beat >= beat_every:
                    last_beat = time.monotonic()
                    if self._beat(None):  # `runs stop` while Locust does not answer: end now
                        return self._finalize(StopReason.USER, trust_locust=False)
                continue
            self._workers = note_workers(poll, self._workers, self.observer, self.writer.events)
            self._learn_shape(poll.shape)
            if self.user_errors.read(self._client):
                self._learn_user_errors()
            if poll.snapshots:
                poll.snapshots[0].exceptionCount += self.user_errors.take_new()
            try:
                for snapshot in poll.snapshots:
                    self.writer.keep(snapshot)
            except SpoolError as exc:
                self.observer.message(f"{exc.message}; stopping the run rather than run blind")
                self._stop_locust()
                self._finalize(StopReason.ERROR, error=exc, failed=True)
                raise
            if self.reader is not None:
                for snapshot in poll.snapshots:
                    self.reader.interval(snapshot)  # a put on a queue: never waits
            stop_requested = False
            if poll.snapshots or time.monotonic() - last_beat >= beat_every:
                last_beat = time.monotonic()
                stop_requested = self._beat(poll.snapshots[-1] if poll.snapshots else None)
            breach = self._judge(poll) or self._read_breach()
            for snapshot in poll.snapshots:
                self.observer.interval(self.run, snapshot)
            if breach is not None:
                self.observer.message(f"threshold {breach.expression} failed; stopping")
                self._stop_locust()
                return self._finalize(StopReason.THRESHOLD)
            if stop_requested:
                self._abort_note = "stopped with 'loadmgr runs stop'"
                self._stop_locust()
                return self._finalize(StopReason.USER)
            if poll.idle:
                early = elapsed < duration - 2
                # `runs stop` stops Locust itself: ask before blaming someone else.
                asked = stop_requested or (early and self._beat(None))
                reason, self._abort_note = end_of_test(
                    poll.stop_cause, self.run.shape is not None, asked, early
                )
                return self._finalize(reason, note=self._abort_note)
            # A shape ignores run_time: the duration is the cap loadmgr holds itself.
            if elapsed > duration + (0.0 if self.run.shape else OVERRUN_GRACE_SEC):
                # run_time should have stopped it; someone's /swarm may have cancelled it.
                self.observer.message(
                    "the duration is up: stopping the load shape"
                    if self.run.shape
                    else "Locust did not stop at the duration; stopping it"
                )
                self._stop_locust()
                return self._finalize(StopReason.DURATION)

    def _learn_shape(self, told: str | None) -> None:
        """Record the shape Locust says it runs, when the locustfile did not tell it."""
        shape = seen_shape(self.run.shape, told)
        if shape is not None:
            self.run.shape = shape
            self.writer.events.learn({"shape": shape})
            self.observer.message(f"Locust runs the load shape {told}: it drives the load")

    def _judge(self, poll: Poll) -> ThresholdResult | None:
        """Judge each new interval (--abort-on-fail); the first breach, if any.

        The states go to the observer before the intervals, so the live view shows each
        threshold's state (ok / breached / not yet judged) beside the numbers."""
        if self.judge is None or not poll.snapshots:
            return None
        if poll.state == "running":
            self.judge.spawn_complete = True
        for snapshot in poll.snapshots:
            breach = self.judge.observe(snapshot.model_dump(mode="python"))
            if breach is not None and self._breach is None:
                self._breach = breach
        self.observer.thresholds(self.judge.states())
        return self._breach

    def _beat(self, snapshot: MetricSnapshot | None) -> bool:
        metrics = None
        if snapshot is not None:
            metrics = metrics_with_peaks(self.run.lastMetrics, snapshot)
            self.run.keep_last_metrics(metrics)
        return self.writer.heartbeat(metrics)

    def _wait_out_fenced(self) -> None:
        """Fenced off: write nothing more. A local Locust lives in this process's children,
        so keep them (read-only) until the collector that took over has ended the run."""
        if self._local is None:
            return
        deadline = time.monotonic() + self.run.durationSeconds + self.settings.lost_timeout + 60
        while time.monotonic() < deadline and not self.stop_event.is_set():
            try:
                current = self.store.runs.find_by_id(self.run.id)
            except DatabaseError:
                current = self.run
            if current is None or not current.status.is_active:
                return
            self.stop_event.wait(2.0)

    def _cleanup(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._local is not None:
            self._local.stop()
            self._local = None
