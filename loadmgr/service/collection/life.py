"""A run's life: start Locust (local) and swarm, follow every second, end it recorded.

The collector is the only writer of a run's intervals. Whatever happens (Locust stops by
itself, a user stops it, Ctrl-C, Locust vanishes or talks nonsense, MongoDB hiccups, a
take-over fences it off), the run ends `Finished` or `Failed`, the lease is released and
any Locust it started is stopped.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ClusterError, DatabaseError, ExitCode, LoadmgrError, ValidationFailed
from loadmgr.locust.seconds import InvalidPayload
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
from loadmgr.service.collection.settings import (
    CollectorSettings,
    QuietObserver,
    RunObserver,
    client_for,
)
from loadmgr.service.collection.sources import POLL_SEC, PluginSource, StatsSource
from loadmgr.service.collection.windows import WindowBuilder, resume_state
from loadmgr.service.collection.writer import Fenced, IntervalWriter
from loadmgr.service.spool import SpoolError
from loadmgr.service.verdicts import decide_verdict, evaluate, verdict_changes

if TYPE_CHECKING:
    from loadmgr.locust.client import LocustClient
    from loadmgr.locust.local import LocalCluster
    from loadmgr.service.abort_judge import AbortJudge
    from loadmgr.store import Store

START_TIMEOUT_SEC = 60.0
FINAL_STATS_TIMEOUT_SEC = 90.0
FINALIZE_RETRY_SEC = 120.0
OVERRUN_GRACE_SEC = 5.0  # past the duration, a still-running Locust is stopped by us
HEARTBEAT_MAX_SEC = 5.0


class LocalFilesError(LoadmgrError):
    """LOADMGR_HOME cannot hold the run's files (disk full, read-only, not a directory)."""

    exit_code = ExitCode.DATABASE


class Collector:
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
        locustfile: str | None = None,
    ) -> None:
        self.store = store
        self.run = run
        self.cluster = cluster
        self.settings = settings
        self.home = home
        self.observer: RunObserver = observer or QuietObserver()
        self.stop_event = stop_event or threading.Event()
        self.locustfile = locustfile
        self.interrupted = False
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
        if settings.abort_on_fail and run.thresholds:
            from loadmgr.service.abort_judge import AbortJudge

            # A taken-over run has finished spawning long ago: every interval counts.
            self.judge = AbortJudge(run.thresholds, spawn_complete=run.status != RunStatus.PENDING)

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
            self._client = client_for(self.cluster, self.run.locustUrl)
            self.writer.replay_spool()
            started = self.run.startedAt or self.run.createdAt
            self._started_mono = (
                time.monotonic() - (self.store.server_now() - started).total_seconds()
            )
            try:
                self._source = self._resumed_source()
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
            try:
                self._client = client_for(self.cluster, self.run.locustUrl)
                self._source = self._resumed_source()
            except ClusterError as exc:
                return self._finalize(StopReason.LOST, error=f"Locust unreachable: {exc.message}")
            return self._finalize(reason)
        finally:
            self._cleanup()

    def launch(self) -> None:
        """Start Locust if local, swarm, and mark the run `Running` once users spawn."""
        try:
            base_url = self._start_cluster()
            self._client = client_for(self.cluster, base_url)
            plugin = self._plugin_version()
            self.observer.message(
                f"swarming {self.run.targetUsers} users at {self.run.spawnRate:g}/s "
                f"for {self.run.durationSeconds}s on {self.run.locustClusterId}"
            )
            sent_at = utcnow()
            # Locust's run_time counts from the swarm, so the run's clock does too.
            self._started_mono = time.monotonic()
            self._client.start_swarm(
                self.run.targetUsers,
                self.run.spawnRate,
                self.run.targetUrl,
                self.run.durationSeconds,
                start_timeout=START_TIMEOUT_SEC,
                worker_wait_sec=10.0,
            )
            self._source = self._new_source(plugin, sent_at)
        except LoadmgrError as exc:
            self._record_failure(exc)
            raise
        running = self.store.runs.update(
            self.run.id,
            {
                "status": RunStatus.RUNNING.value,
                "startedAt": sent_at,
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
        return self.settings.to_document(**extra)

    def _plugin_version(self) -> int | None:
        """The cluster's plugin protocol (None without the plugin); refuses an unknown one."""
        from loadmgr.locust.seconds import SUPPORTED_VERSIONS

        assert self._client is not None
        version = self._client.plugin_version()
        if version is not None and version not in SUPPORTED_VERSIONS:
            raise ClusterError(
                f"the cluster's loadmgr plugin speaks protocol {version}, which this loadmgr "
                "cannot read",
                hint="install the matching plugin: 'loadmgr clusters plugin --write PATH'",
            )
        if version is None:
            self.observer.message(
                "the cluster lacks the loadmgr plugin: intervals come from /stats/requests "
                "(percentiles are Locust's rolling window); see 'loadmgr clusters plugin'"
            )
        return version

    def _new_source(self, plugin: int | None, sent_at: datetime) -> PluginSource | StatsSource:
        assert self._client is not None
        if plugin is None:
            from loadmgr.locust.stats import SnapshotBuilder

            builder = SnapshotBuilder(
                self.run.id,
                started_at=sent_at,
                tenant_id=self.run.tenantId,
                env_id=self.run.envId,
                seq=1,
            )
            return StatsSource(self._client, builder, self.settings.interval)
        first = PluginSource.first_batch(self._client)
        origin = int(first.test_started if first.test_started is not None else sent_at.timestamp())
        windows = WindowBuilder(
            self.run.id,
            origin=origin,
            interval=self.settings.interval,
            tenant_id=self.run.tenantId,
            env_id=self.run.envId,
        )
        return PluginSource(self._client, windows)

    def _resumed_source(self) -> PluginSource | StatsSource:
        """The source that continues right after the last interval stored for the run."""
        assert self._client is not None
        last = self.store.metrics.latest(self.run.id)
        origin = (self.run.collector or {}).get("origin")
        if self.run.collectionMode == "plugin":
            if isinstance(origin, int) and not isinstance(origin, bool):
                state = resume_state(last)
                state["request_totals"] = self.store.metrics.request_totals(self.run.id)
                windows = WindowBuilder(
                    self.run.id,
                    origin=origin,
                    interval=self.settings.interval,
                    tenant_id=self.run.tenantId,
                    env_id=self.run.envId,
                    **state,
                )
                return PluginSource(self._client, windows)
        from loadmgr.locust.stats import SnapshotBuilder
        from loadmgr.service.collection.sources import moment

        builder = SnapshotBuilder(
            self.run.id,
            started_at=utcnow(),
            tenant_id=self.run.tenantId,
            env_id=self.run.envId,
            seq=(int(last.get("seq") or 0) if last else 0) + 1,
        )
        since = self.run.startedAt or self.run.createdAt
        if last:
            since = moment(last.get("windowEnd") or last.get("timestamp"), since)
        builder.resume(last, since)
        self._client.stats()  # Locust must answer before we call the run ours
        return StatsSource(self._client, builder, self.settings.interval)

    def _start_cluster(self) -> str | None:
        """The local cluster's URL once its master and workers are up; None for remote."""
        self.store.runs.update(
            self.run.id,
            {"collector": self.settings.to_document(), "heartbeatAt": self.store.server_now()},
            epoch=self.writer.epoch,
        )
        if self.cluster is not None:
            return None
        if not self.locustfile:
            raise ClusterError("the test has no stored locustfile to run locally")
        from loadmgr.locust.local import LocalCluster

        run_dir = self.home / "runs" / self.run.id
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            path = run_dir / "locustfile.py"
            path.write_text(self.locustfile, encoding="utf-8")
            self.observer.message("starting a local Locust (master and workers)")
            self._local = LocalCluster(path, workers=self.settings.workers, log_dir=run_dir)
            if self.stop_event.is_set():
                raise ClusterError("interrupted before the local Locust started")
            self._local.start()
        except (NotADirectoryError, FileExistsError) as exc:
            raise ValidationFailed(
                f"cannot keep the run's files under {self.home}: {exc.strerror or exc} "
                f"({exc.filename})",
                hint="LOADMGR_HOME must be a directory loadmgr can write",
            ) from None
        except OSError as exc:
            raise LocalFilesError(
                f"cannot keep the run's files under {self.home}: {exc.strerror or exc}",
                hint="free disk space or fix permissions under LOADMGR_HOME",
            ) from None
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
        while True:
            if self.stop_event.wait(max(0.0, next_poll - time.monotonic())):
                self.interrupted = True
                self.observer.message("interrupted: stopping the load and recording the run")
                self._stop_locust()
                return self._finalize(StopReason.USER)
            # After a stall (a paused process), carry on from now: no burst of catch-up polls.
            next_poll = max(next_poll + POLL_SEC, time.monotonic())
            elapsed = time.monotonic() - self._started_mono
            try:
                if self._source is None:
                    self._source = self._resumed_source()
                poll = self._source.poll()
                failing_since, last_problem = None, ""
            except ClusterError as exc:
                failing_since = failing_since or time.monotonic()
                silent = time.monotonic() - failing_since
                if elapsed > duration + OVERRUN_GRACE_SEC:
                    self._stop_locust(every=5.0)  # the duration holds even while polls fail
                if silent >= self.settings.lost_timeout:
                    return self._give_up(exc, silent)
                if exc.message != last_problem:
                    self.observer.message(f"{exc.message}; retrying")
                    last_problem = exc.message
                if time.monotonic() - last_beat >= beat_every:
                    last_beat = time.monotonic()
                    self._beat(None)
                continue
            if poll.payload:
                self._note_workers(poll.payload)
            try:
                for snapshot in poll.snapshots:
                    self.writer.keep(snapshot)
            except SpoolError as exc:
                self.observer.message(f"{exc.message}; stopping the run rather than run blind")
                self._stop_locust()
                self._finalize(StopReason.ERROR, error=exc.message, failed=True)
                raise
            stop_requested = False
            if poll.snapshots or time.monotonic() - last_beat >= beat_every:
                last_beat = time.monotonic()
                stop_requested = self._beat(poll.snapshots[-1] if poll.snapshots else None)
            for snapshot in poll.snapshots:
                self.observer.interval(self.run, snapshot)
            if stop_requested:
                self._abort_note = "stopped with 'loadmgr runs stop'"
                self._stop_locust()
                return self._finalize(StopReason.USER)
            if poll.idle:
                early = elapsed < duration - 2
                if early:
                    self._abort_note = "Locust was stopped outside loadmgr"
                return self._finalize(
                    StopReason.USER if early else StopReason.DURATION,
                    note=self._abort_note,
                )
            if elapsed > duration + OVERRUN_GRACE_SEC:
                # run_time should have stopped it; someone's /swarm may have cancelled it.
                self.observer.message("Locust did not stop at the duration; stopping it")
                self._stop_locust()
                return self._finalize(StopReason.DURATION)
            if self.judge is not None:
                if poll.state == "running" and not self.judge.spawn_complete:
                    self.judge.spawn_complete = True
                for snapshot in poll.snapshots:
                    broken = self.judge.observe(snapshot.model_dump(mode="python"))
                    if broken is not None:
                        self._breach = broken
                        self.observer.message(f"threshold {broken.expression} failed; stopping")
                        self._stop_locust()
                        return self._finalize(StopReason.THRESHOLD)

    def _give_up(self, exc: ClusterError, silent: float) -> LoadTestRun:
        """Locust was silent, or talked nonsense, for the whole --lost-timeout."""
        self._stop_locust()
        if isinstance(exc, InvalidPayload):
            return self._finalize(
                StopReason.ERROR,
                error=f"Locust kept answering nonsense for {silent:.0f}s: {exc.message}",
                failed=True,
                trust_locust=False,
            )
        return self._finalize(
            StopReason.LOST, error=f"Locust lost: no answer for {silent:.0f}s ({exc.message})"
        )

    def _beat(self, snapshot: MetricSnapshot | None) -> bool:
        metrics = None
        if snapshot is not None:
            # Running peaks, so a summary never has to scan every interval.
            previous = self.run.lastMetrics
            metrics = {
                **last_metrics(snapshot),
                "maxRPS": max(float(previous.get("maxRPS") or 0.0), snapshot.totalRPS),
                "maxUsers": max(int(previous.get("maxUsers") or 0), snapshot.currentUsers),
            }
            self.run.lastMetrics = metrics
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

    def _note_workers(self, payload: dict[str, Any]) -> None:
        """Say so when a worker joins or disappears."""
        count = payload.get("worker_count")
        if not isinstance(count, int):
            return
        if self._workers is not None and count != self._workers:
            missing = [
                str(w.get("id"))
                for w in payload.get("workers") or []
                if w.get("state") == "missing"
            ]
            detail = f" (missing: {', '.join(missing)})" if missing else ""
            self.observer.message(f"workers: {self._workers} → {count}{detail}")
        self._workers = count

    def _stop_locust(self, every: float = 0.0) -> None:
        if self._client is None or time.monotonic() - self._last_stop_sent < every:
            return
        self._last_stop_sent = time.monotonic()
        try:
            self._client.stop()
        except ClusterError as exc:
            self.observer.message(f"could not stop Locust: {exc.message}")

    # -- the end ---------------------------------------------------------------------------

    def _finalize(
        self,
        reason: StopReason,
        *,
        error: str | None = None,
        note: str | None = None,
        failed: bool = False,
        trust_locust: bool = True,
    ) -> LoadTestRun:
        """Record final stats, thresholds, verdict and status; release the lease.

        Final stats come from Locust unless it was lost or answers nonsense."""
        final: dict[str, Any] | None = None
        if reason != StopReason.LOST and trust_locust and self._client is not None:
            try:
                payload = self._client.wait_final_stats(FINAL_STATS_TIMEOUT_SEC)
                final = self._final_stats(payload)
            except ClusterError as exc:
                error = error or f"final stats unavailable: {exc.message}"
        status = RunStatus.FINISHED if final is not None and not failed else RunStatus.FAILED
        judged = self._judged_stats(final)
        results = evaluate(self.run.thresholds, judged) if judged is not None else []
        verdict, reasons = decide_verdict(
            status=status,
            stop_reason=reason,
            threshold_results=results,
            final_totals=(judged or {}).get("totals"),
            error=error,
            interrupted=self.interrupted,
            abort_breach=self._breach,
            abort_note=self._abort_note or note,
        )
        changes: dict[str, Any] = {
            "status": status.value,
            "finishedAt": utcnow(),
            "stopReason": reason.value,
            **verdict_changes(verdict, reasons),
            "thresholdResults": [r.model_dump() for r in results],
            "finalStats": final,
            "error": error or note,
            "updatedAt": utcnow(),
        }
        if final is not None:
            changes["lastMetrics"] = {**self.run.lastMetrics, **_final_last_metrics(final)}
        if judged is not final and judged is not None:
            changes["judgedStats"] = judged
        self.run = self._write_final(changes)
        self.observer.finished(self.run)
        return self.run

    def _judged_stats(self, final: dict[str, Any] | None) -> dict[str, Any] | None:
        """What thresholds judge: the whole run, or, with a warm-up, the part after it
        (exact from the intervals' histograms; without the plugin, the whole run)."""
        if final is None or not self.run.warmupSec:
            return final
        if not isinstance(self._source, PluginSource):
            self.observer.message(
                "the warm-up is not left out: it needs the loadmgr plugin's intervals"
            )
            return final
        from loadmgr.service.run_window import Window, window_stats

        try:
            self.writer.flush()
            return window_stats(self.store, self.run, Window(start=float(self.run.warmupSec)))
        except DatabaseError as exc:
            self.observer.message(f"the warm-up is not left out: {exc.message}")
            return final

    def _final_stats(self, payload: dict[str, Any]) -> dict[str, Any]:
        from loadmgr.locust.stats import final_stats
        from loadmgr.locust.validation import check_stats

        assert self._client is not None
        check_stats(payload)
        try:
            rows = self._client.requests_csv()
        except ClusterError:
            rows = None  # p90 is a bonus; the JSON payload has everything else
        final = final_stats(payload, rows)
        last: list[MetricSnapshot] = []
        try:
            if isinstance(self._source, PluginSource):
                last = self._source.final()
                self._check_sums(final)
            elif isinstance(self._source, StatsSource):
                last = self._source.final(payload)
        except ClusterError as exc:
            self.observer.message(f"the last seconds could not be read: {exc.message}")
        for snapshot in last:
            if snapshot.intervalRequests:  # requests the last poll had not seen yet
                self.observer.interval(self.run, snapshot)
            try:
                self.writer.keep(snapshot)
            except SpoolError:
                pass  # kept in memory: the end is near, and write_final stores it
        return final

    def _check_sums(self, final: dict[str, Any]) -> None:
        """Say so if the intervals' requests do not add up to Locust's own total."""
        assert isinstance(self._source, PluginSource)
        builder = self._source.builder
        locust_total = int((final.get("totals") or {}).get("requests") or 0)
        if builder.total_requests != locust_total:
            final["intervalRequests"] = builder.total_requests
            self.observer.message(
                f"the intervals hold {builder.total_requests} requests, Locust counted "
                f"{locust_total} (lost seconds: {builder.lost_seconds})"
            )

    def _write_final(self, changes: dict[str, Any]) -> LoadTestRun:
        """Store the end of the run, retrying through a MongoDB outage for a while."""
        deadline = time.monotonic() + FINALIZE_RETRY_SEC
        while True:
            try:
                updated = self.writer.write_final(changes)
                if updated is None:  # someone else recorded the end first, or fenced us
                    fresh = self.store.runs.find_by_id(self.run.id)
                    return fresh or self.run
                return updated
            except DatabaseError as exc:
                if time.monotonic() >= deadline:
                    raise
                self.observer.message(f"MongoDB unavailable ({exc.message}); retrying")
                time.sleep(2.0)

    def _record_failure(self, exc: LoadmgrError) -> None:
        """A run that could not start: `Failed` with the reason, the lease released."""
        interrupted = self.stop_event.is_set()
        verdict, reasons = decide_verdict(
            status=RunStatus.FAILED,
            stop_reason=StopReason.USER if interrupted else StopReason.ERROR,
            error=None if interrupted else exc,
            interrupted=interrupted,
        )
        try:
            self.run = self._write_final(
                {
                    "status": RunStatus.FAILED.value,
                    "finishedAt": utcnow(),
                    "stopReason": (StopReason.USER if interrupted else StopReason.ERROR).value,
                    "error": exc.message,
                    "updatedAt": utcnow(),
                    **verdict_changes(verdict, reasons),
                }
            )
            self.observer.finished(self.run)
        except DatabaseError:
            pass  # the original error is the one to report

    def _cleanup(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._local is not None:
            self._local.stop()
            self._local = None


def last_metrics(snapshot: MetricSnapshot) -> dict[str, Any]:
    """The run's `lastMetrics`: the latest interval's aggregate numbers, no per-request."""
    return snapshot.model_dump(
        mode="python",
        exclude={"requestStats", "loadTestRunId", "tenantId", "envId", "metadata", "hist"},
    )


def _final_last_metrics(final: dict[str, Any]) -> dict[str, Any]:
    totals = final.get("totals") or {}
    return {
        "totalRequests": totals.get("requests"),
        "totalFailures": totals.get("failures"),
        "currentUsers": final.get("userCount", 0),
        "state": final.get("state"),
    }
