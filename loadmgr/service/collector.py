"""Following a run: swarm, poll every interval, record, and always end with the run recorded.

The collector is the only writer of a run's intervals. Whatever happens (Locust stops by
itself, a user stops it, Ctrl-C, Locust vanishes, MongoDB hiccups), it ends the run
`Finished` or `Failed`, releases the cluster's lease and stops any Locust it started.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loadmgr.errors import ClusterError, DatabaseError, LoadmgrError
from loadmgr.models import (
    LOCAL_CLUSTER_ID,
    LoadTestRun,
    LocustCluster,
    MetricSnapshot,
    RunStatus,
    StopReason,
    utcnow,
)
from loadmgr.service.runs import lease_id, lease_ttl
from loadmgr.service.spool import Spool, SpoolError, spool_path
from loadmgr.service.verdicts import doomed, evaluate, verdict_of

if TYPE_CHECKING:
    from loadmgr.locust.client import LocustClient
    from loadmgr.locust.local import LocalCluster
    from loadmgr.locust.stats import SnapshotBuilder
    from loadmgr.store import Store

START_TIMEOUT_SEC = 60.0
FINAL_STATS_TIMEOUT_SEC = 90.0
FINALIZE_RETRY_SEC = 120.0


class RunObserver(Protocol):
    """What the CLI shows while a run goes on (a live view, or one line per interval)."""

    def message(self, text: str) -> None: ...

    def started(self, run: LoadTestRun) -> None: ...

    def interval(self, run: LoadTestRun, snapshot: MetricSnapshot) -> None: ...

    def finished(self, run: LoadTestRun) -> None: ...


class QuietObserver:
    """Shows nothing."""

    def message(self, text: str) -> None:
        pass

    def started(self, run: LoadTestRun) -> None:
        pass

    def interval(self, run: LoadTestRun, snapshot: MetricSnapshot) -> None:
        pass

    def finished(self, run: LoadTestRun) -> None:
        pass


@dataclass(frozen=True)
class CollectorSettings:
    """How a collector behaves; stored on the run so a take-over behaves the same."""

    interval: float = 5.0
    lost_timeout: float = 30.0
    workers: int | None = None
    abort_on_fail: bool = False

    def to_document(self) -> dict[str, Any]:
        return {
            "interval": self.interval,
            "lostTimeout": self.lost_timeout,
            "workers": self.workers,
            "abortOnFail": self.abort_on_fail,
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }

    @classmethod
    def from_run(cls, run: LoadTestRun) -> CollectorSettings:
        data = run.collector or {}
        return cls(
            interval=float(data.get("interval") or 5.0),
            lost_timeout=float(data.get("lostTimeout") or 30.0),
            workers=data.get("workers"),
            abort_on_fail=bool(data.get("abortOnFail")),
        )


def client_for(cluster: LocustCluster | None, base_url: str | None) -> LocustClient:
    from loadmgr.locust.client import LocustClient

    if cluster is not None:
        return LocustClient.from_cluster(cluster)
    if base_url is None:
        raise ClusterError("the run has no Locust address recorded")
    return LocustClient(base_url)


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
        self._client: LocustClient | None = None
        self._local: LocalCluster | None = None
        self._builder: SnapshotBuilder | None = None
        self._pending: list[MetricSnapshot] = []  # intervals not yet stored (MongoDB down)
        self._spool = Spool(spool_path(home, run.id))
        self._workers: int | None = None
        self._started_mono = time.monotonic()

    # -- the whole life ------------------------------------------------------------------

    def execute(self) -> LoadTestRun:
        """Launch the run, follow it to its end, record it; never leaves it active."""
        try:
            self.launch()
            return self.follow()
        finally:
            self._cleanup()

    def take_over(self) -> LoadTestRun:
        """Continue collecting a run whose collector died; finalise it at its end."""
        try:
            self._client = client_for(self.cluster, self.run.locustUrl)
            from loadmgr.locust.stats import SnapshotBuilder

            self.replay_spool()
            seq = self.store.metrics.last_seq(self.run.id) + 1
            self._builder = SnapshotBuilder(
                self.run.id,
                started_at=utcnow(),
                tenant_id=self.run.tenantId,
                env_id=self.run.envId,
                seq=seq,
            )
            started = self.run.startedAt or self.run.createdAt
            self._started_mono = time.monotonic() - (utcnow() - started).total_seconds()
            try:
                self._builder.prime(self._client.stats(), utcnow())
            except ClusterError as exc:
                if self.run.locustClusterId == LOCAL_CLUSTER_ID:
                    # A local Locust dies with the collector that started it.
                    return self._finalize(StopReason.LOST, error=f"Locust was lost: {exc}")
            self.observer.started(self.run)
            return self.follow()
        finally:
            self._cleanup()

    def launch(self) -> None:
        """Start Locust if local, swarm, and mark the run `Running` once users spawn."""
        try:
            base_url = self._start_cluster()
            self._client = client_for(self.cluster, base_url)
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
        except LoadmgrError as exc:
            self._record_failure(exc)
            raise
        from loadmgr.locust.stats import SnapshotBuilder

        self._builder = SnapshotBuilder(
            self.run.id,
            started_at=sent_at,
            tenant_id=self.run.tenantId,
            env_id=self.run.envId,
            seq=1,
        )
        running = self.store.runs.update(
            self.run.id,
            {
                "status": RunStatus.RUNNING.value,
                "startedAt": sent_at,
                "heartbeatAt": utcnow(),
                "locustUrl": base_url if self.cluster is None else self.cluster.baseUrl,
                "updatedAt": utcnow(),
            },
            only_if_status=[RunStatus.PENDING.value],
        )
        if running is not None:
            self.run = running
        self.observer.started(self.run)

    def _start_cluster(self) -> str | None:
        """The local cluster's URL once its master and workers are up; None for remote."""
        self.store.runs.update(
            self.run.id,
            {"collector": self.settings.to_document(), "heartbeatAt": utcnow()},
        )
        if self.cluster is not None:
            return None
        if not self.locustfile:
            raise ClusterError("the test has no stored locustfile to run locally")
        from loadmgr.locust.local import LocalCluster

        run_dir = self.home / "runs" / self.run.id
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "locustfile.py"
        path.write_text(self.locustfile, encoding="utf-8")
        self.observer.message("starting a local Locust (master and workers)")
        self._local = LocalCluster(path, workers=self.settings.workers, log_dir=run_dir)
        self._local.start()
        return self._local.base_url

    # -- following -------------------------------------------------------------------------

    def follow(self) -> LoadTestRun:
        """Poll every interval until the run ends; then record its end."""
        assert self._client is not None and self._builder is not None
        interval = self.settings.interval
        duration = self.run.durationSeconds
        grace = max(30.0, 3 * interval)
        next_tick = time.monotonic() + interval
        failing_since: float | None = None
        while True:
            if self.stop_event.wait(max(0.0, next_tick - time.monotonic())):
                self.interrupted = True
                self.observer.message("interrupted: stopping the load and recording the run")
                self._stop_locust()
                return self._finalize(StopReason.USER)
            next_tick += interval
            try:
                payload = self._client.stats()
                failing_since = None
            except ClusterError as exc:
                failing_since = failing_since or time.monotonic()
                silent = time.monotonic() - failing_since
                if silent >= self.settings.lost_timeout:
                    return self._finalize(
                        StopReason.LOST,
                        error=f"Locust lost: no answer for {silent:.0f}s ({exc.message})",
                    )
                self.observer.message(f"Locust is not answering ({exc.message}); retrying")
                self._heartbeat(None)
                continue
            snapshot = self._builder.build(payload, utcnow())
            if snapshot is not None:
                self._note_workers(snapshot, payload)
            try:
                stop_requested = self._heartbeat(snapshot)
            except SpoolError as exc:
                self.observer.message(f"{exc.message}; stopping the run rather than run blind")
                self._stop_locust()
                self._finalize(StopReason.ERROR, error=exc.message, failed=True)
                raise
            if snapshot is not None:
                self.observer.interval(self.run, snapshot)
            elapsed = time.monotonic() - self._started_mono
            if stop_requested:
                self._stop_locust()
                return self._finalize(StopReason.USER)
            if payload.get("state") in ("stopped", "ready"):
                early = elapsed < duration - interval - 3
                return self._finalize(
                    StopReason.USER if early else StopReason.DURATION,
                    note="Locust was stopped outside loadmgr" if early else None,
                )
            if elapsed > duration + grace:
                # run_time should have stopped it; someone's /swarm may have cancelled it.
                self.observer.message("Locust did not stop at the duration; stopping it")
                self._stop_locust()
                return self._finalize(StopReason.DURATION)
            if self.settings.abort_on_fail and snapshot is not None:
                broken = doomed(self.run.thresholds, _snapshot_totals(snapshot))
                if broken is not None:
                    self.observer.message(f"threshold {broken.expression} failed; stopping")
                    self._stop_locust()
                    return self._finalize(StopReason.THRESHOLD)

    def _heartbeat(self, snapshot: MetricSnapshot | None) -> bool:
        """Store pending intervals, refresh heartbeat, lease and lastMetrics.

        Returns whether someone asked (with `runs stop`) for the run to stop. A MongoDB
        failure is survived: the intervals wait in memory for the next attempt.
        """
        if snapshot is not None:
            self._keep(snapshot)
        now = utcnow()
        try:
            with self.store.bounded(max(1.0, self.settings.interval * 0.8)):
                return self._store_heartbeat(snapshot, now)
        except DatabaseError as exc:
            self.observer.message(
                f"MongoDB unavailable ({exc.message}); keeping {len(self._pending)} interval(s)"
            )
            return False

    def _store_heartbeat(self, snapshot: MetricSnapshot | None, now: datetime) -> bool:
        self._flush()
        changes: dict[str, Any] = {"heartbeatAt": now}
        if snapshot is not None:
            # Running peaks, so a summary never has to scan every interval.
            previous = self.run.lastMetrics
            changes["lastMetrics"] = {
                **last_metrics(snapshot),
                "maxRPS": max(float(previous.get("maxRPS") or 0.0), snapshot.totalRPS),
                "maxUsers": max(int(previous.get("maxUsers") or 0), snapshot.currentUsers),
            }
            self.run.lastMetrics = changes["lastMetrics"]
        state = self.store.runs.heartbeat(self.run.id, changes)
        self.store.leases.renew(
            lease_id(self.run.locustClusterId), self.run.id, now, lease_ttl(self.settings.interval)
        )
        if state is None:
            return False
        return bool(state.get("stopRequested")) or state.get("status") == RunStatus.STOPPING.value

    def _note_workers(self, snapshot: MetricSnapshot, payload: dict[str, Any]) -> None:
        """Say so when a worker joins or disappears; the snapshot records the count."""
        count = snapshot.workerCount
        states: dict[str, int] = {}
        for worker in payload.get("workers") or []:
            state = str(worker.get("state"))
            states[state] = states.get(state, 0) + 1
        if states:
            snapshot.metadata["workerStates"] = states
        if count is not None and self._workers is not None and count != self._workers:
            missing = [
                w.get("id") for w in payload.get("workers") or [] if w.get("state") == "missing"
            ]
            detail = f" (missing: {', '.join(map(str, missing))})" if missing else ""
            self.observer.message(f"workers: {self._workers} → {count}{detail}")
        self._workers = count

    def _keep(self, snapshot: MetricSnapshot) -> None:
        """Spool an interval before anything else, so no failure after this loses it."""
        self._spool.append(snapshot)
        self._pending.append(snapshot)

    def _flush(self) -> None:
        """Store the kept intervals in order (idempotently) and empty the spool."""
        if self._pending:
            self.store.metrics.save(self._pending)
            self._pending = []
        self._spool.clear()

    def replay_spool(self) -> int:
        """Store intervals a dead collector on this machine spooled but never stored."""
        spooled = self._spool.load()
        if spooled:
            self._pending = spooled + self._pending
            self._flush()
        return len(spooled)

    def _stop_locust(self) -> None:
        if self._client is None:
            return
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
    ) -> LoadTestRun:
        """Record final stats, thresholds, verdict and status; release the lease."""
        final: dict[str, Any] | None = None
        if reason != StopReason.LOST and self._client is not None:
            try:
                payload = self._client.wait_final_stats(FINAL_STATS_TIMEOUT_SEC)
                final = self._final_stats(payload)
            except ClusterError as exc:
                error = f"final stats unavailable: {exc.message}"
        status = RunStatus.FINISHED if final is not None and not failed else RunStatus.FAILED
        results = evaluate(self.run.thresholds, final) if final is not None else []
        verdict = verdict_of(results)
        changes: dict[str, Any] = {
            "status": status.value,
            "finishedAt": utcnow(),
            "stopReason": reason.value,
            "verdict": verdict.value if verdict else None,
            "thresholdResults": [r.model_dump() for r in results],
            "finalStats": final,
            "error": error or note,
            "updatedAt": utcnow(),
        }
        if final is not None:
            changes["lastMetrics"] = {**self.run.lastMetrics, **_final_last_metrics(final)}
        if reason == StopReason.LOST:
            changes["stopReason"] = StopReason.LOST.value
        self.run = self._write_final(changes)
        self.observer.finished(self.run)
        return self.run

    def _final_stats(self, payload: dict[str, Any]) -> dict[str, Any]:
        from loadmgr.locust.stats import final_stats

        assert self._client is not None
        try:
            rows = self._client.requests_csv()
        except ClusterError:
            rows = None  # p90 is a bonus; the JSON payload has everything else
        final = final_stats(payload, rows)
        if self._builder is not None:
            last = self._builder.build(payload, utcnow(), force=True)
            if last is not None:
                last.metadata["final"] = True
                if last.intervalRequests:  # requests the last poll had not seen yet
                    self.observer.interval(self.run, last)
                try:
                    self._keep(last)
                except SpoolError:
                    self._pending.append(last)  # the end is near: memory will do
        return final

    def _write_final(self, changes: dict[str, Any]) -> LoadTestRun:
        """Store the end of the run, retrying through a MongoDB outage for a while."""
        deadline = time.monotonic() + FINALIZE_RETRY_SEC
        while True:
            try:
                self._flush()
                updated = self.store.runs.update(
                    self.run.id,
                    changes,
                    only_if_status=[s.value for s in RunStatus if s.is_active],
                )
                self.store.leases.release(lease_id(self.run.locustClusterId), self.run.id)
                if updated is None:  # someone else recorded the end first
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
        try:
            self._stop_locust()
            self.run = self._write_final(
                {
                    "status": RunStatus.FAILED.value,
                    "finishedAt": utcnow(),
                    "stopReason": StopReason.ERROR.value,
                    "error": exc.message,
                    "updatedAt": utcnow(),
                }
            )
            self.observer.finished(self.run)
        except DatabaseError:
            pass  # the original error is the one to report

    def finish_orphan(self, reason: StopReason) -> LoadTestRun:
        """Record the end of a run whose collector is gone (`runs stop` on a stale run)."""
        try:
            self.replay_spool()
            try:
                self._client = client_for(self.cluster, self.run.locustUrl)
                self._client.stats()
            except ClusterError as exc:
                return self._finalize(StopReason.LOST, error=f"Locust unreachable: {exc.message}")
            return self._finalize(reason)
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._local is not None:
            self._local.stop()
            self._local = None


def _snapshot_totals(snapshot: MetricSnapshot) -> dict[str, Any]:
    return {
        "requests": snapshot.totalRequests,
        "failures": snapshot.totalFailures,
        "maxResponseMs": snapshot.maxResponseMs,
        "minResponseMs": snapshot.minResponseMs,
    }


def last_metrics(snapshot: MetricSnapshot) -> dict[str, Any]:
    """The run's `lastMetrics`: the latest interval's aggregate numbers, no per-request."""
    return snapshot.model_dump(
        mode="python",
        exclude={"requestStats", "loadTestRunId", "tenantId", "envId", "metadata"},
    )


def _final_last_metrics(final: dict[str, Any]) -> dict[str, Any]:
    totals = final.get("totals") or {}
    return {
        "totalRequests": totals.get("requests"),
        "totalFailures": totals.get("failures"),
        "currentUsers": final.get("userCount", 0),
        "state": final.get("state"),
    }
