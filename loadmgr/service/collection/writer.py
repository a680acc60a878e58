"""Storing a run's intervals: spooled first, written in order, fenced, never blocking.

Every interval is appended to the run's spool file before anything else, so neither a
MongoDB outage nor a crash loses it; the spool empties once MongoDB has it. Every write
carries the collector's fencing epoch: after a take-over, the previous collector's writes
match nothing, and it learns it was fenced off at its next heartbeat.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadmgr.errors import DatabaseError, DatabaseRefused, ExitCode, LoadmgrError
from loadmgr.models import LoadTestRun, MetricSnapshot, RunStatus
from loadmgr.models.stats.generator import GeneratorTally
from loadmgr.service.collection.events import RunEvents
from loadmgr.service.collection.fitting import slimmer_intervals
from loadmgr.service.collection.settings import RunObserver
from loadmgr.service.collection.spool import Spool, SpoolError, spool_path
from loadmgr.service.runs.lease import lease_id, lease_ttl

if TYPE_CHECKING:
    from loadmgr.store import Store


DRAIN_BATCH = 10  # intervals in one write
DRAIN_BATCHES_PER_BEAT = 3


class Fenced(LoadmgrError):
    """Another collector took the run over: this one must write nothing more."""

    exit_code = ExitCode.CONFLICT


class IntervalWriter:
    """The only path from a collector to MongoDB for one run."""

    def __init__(
        self,
        store: Store,
        run: LoadTestRun,
        *,
        home: Path,
        interval: float,
        observer: RunObserver,
    ) -> None:
        self.store = store
        self.run = run
        self.epoch = run.collectorEpoch
        self.interval = interval
        self.observer = observer
        self.home = home
        self.spool = Spool(spool_path(home, run.id))
        self.pending: list[MetricSnapshot] = []  # kept, not yet stored (MongoDB away)
        self.fenced = False
        self.rejected = 0
        self.events = RunEvents(list(run.events))  # stored with the next heartbeat
        # Every kept interval's load generator, for the run's `generatorStats` at its end.
        self.generator = GeneratorTally()

    def keep(self, snapshot: MetricSnapshot) -> None:
        """Spool an interval before anything else, so no failure after this loses it.

        With the spool unwritable (disk full), the interval is stored straight away if
        MongoDB takes it, and SpoolError is raised after: the run goes on no further blind.
        """
        snapshot.metadata["epoch"] = self.epoch  # which collector wrote it (tests, forensics)
        start = snapshot.windowStart.timestamp() if snapshot.windowStart else None
        self.generator.add(start, snapshot.intervalSec, snapshot.generator)
        self.pending.append(snapshot)
        try:
            self.spool.append(snapshot)
        except SpoolError:
            try:
                self._save_pending()
            except DatabaseError:
                pass  # still in memory; the caller stops the run and retries the end
            raise

    def heartbeat(self, last_metrics: dict[str, Any] | None) -> bool:
        """Prove this collector still holds the run, then store what is pending.

        Returns whether someone asked (`runs stop`) for the run to stop. Raises Fenced
        when another collector took the run over. A MongoDB outage is survived: the
        intervals wait in the spool and in memory for the next attempt.
        """
        if self.fenced:
            raise Fenced(f"run {self.run.id} was taken over by another collector")
        try:
            with self.store.bounded(max(1.0, self.interval * 0.8)):
                now = self.store.server_now()
                state = self._beat(now, last_metrics)
                self.events.unsaved = False
                # A backlog (after an outage) drains a few batches a beat, while the run
                # goes on: one bulk write of all of it may never fit the bound.
                self._save_pending(batches=DRAIN_BATCHES_PER_BEAT)
                self.store.leases.renew(
                    lease_id(self.run.locustClusterId), self.run.id, now, lease_ttl(self.interval)
                )
        except DatabaseError as exc:
            self.observer.message(
                f"MongoDB unavailable ({exc.message}); keeping {len(self.pending)} interval(s)"
            )
            return False
        if state is None:
            return False
        return bool(state.get("stopRequested")) or state.get("status") == RunStatus.STOPPING.value

    def _beat(self, now: datetime, last_metrics: dict[str, Any] | None) -> dict[str, Any] | None:
        changes: dict[str, Any] = {"heartbeatAt": now, **self.events.fields()}
        if last_metrics is not None:
            changes["lastMetrics"] = last_metrics
        state = self.store.runs.heartbeat(self.run.id, self.epoch, changes)
        if state is None:
            current = self.store.runs.epoch_of(self.run.id)
            if current is not None and current != self.epoch:
                self.fenced = True
                self.pending.clear()  # the new collector refills these seconds itself
                raise Fenced(
                    f"run {self.run.id} was taken over by another collector (epoch "
                    f"{current}, this one {self.epoch}); this collector stops writing"
                )
        return state

    def _save_pending(self, batches: int | None = None) -> None:
        """Store the kept intervals in order (idempotently), `batches` of DRAIN_BATCH at
        most (None: all), and empty the spool once nothing is pending.

        An outage (DatabaseError) leaves what is not stored pending; only a refusal
        (DatabaseRefused: the interval as it is can never be stored) sets one aside.
        """
        while self.pending and batches != 0:
            batch = self.pending[:DRAIN_BATCH]
            try:
                self.store.metrics.save(batch)
                del self.pending[: len(batch)]
            except DatabaseRefused as exc:
                self._set_aside(batch, exc)  # removes each from `pending` once settled
            batches = None if batches is None else batches - 1
        if not self.pending:
            self.spool.clear()

    def _set_aside(self, batch: list[MetricSnapshot], exc: DatabaseRefused) -> None:
        """One by one: store those MongoDB takes, a refused one in a slimmer form (its
        totals kept, so the sums stay Locust's), and set aside only what no form of it
        passes. An outage meanwhile stops here (raised), the rest still pending."""
        for snapshot in batch:
            try:
                self.store.metrics.save([snapshot])
            except DatabaseRefused as refused:
                self._store_slimmer(snapshot, refused.message or exc.message)
            self.pending.pop(0)  # `batch` is the head of `pending`

    def _store_slimmer(self, snapshot: MetricSnapshot, why: str) -> None:
        for slim in slimmer_intervals(snapshot):
            try:
                self.store.metrics.save([slim])
            except DatabaseRefused:
                continue
            self.observer.message(
                f"MongoDB refused interval {snapshot.seq} ({why}); "
                f"stored it {slim.metadata['slimmed']}"
            )
            return
        self.rejected += 1
        where = self._keep_aside(snapshot)
        self.observer.message(f"MongoDB refused interval {snapshot.seq} ({why}); {where}")

    def _keep_aside(self, snapshot: MetricSnapshot) -> str:
        """Write a refused interval next to the spool, for a person to look at."""
        aside = self.spool.path.with_suffix(".rejected.jsonl")
        try:
            with open(aside, "a", encoding="utf-8") as handle:
                handle.write(snapshot.model_dump_json() + "\n")
        except OSError as error:
            return f"could not keep it aside: {error.strerror or error}"
        return f"kept in {aside}"

    def flush(self) -> None:
        """Store what is pending now (the end of a run); DatabaseError if MongoDB is away."""
        self._save_pending()

    def replay_spool(self) -> int:
        """Take over intervals a dead collector on this machine spooled but never stored."""
        try:
            spooled = self.spool.load()
        except SpoolError as exc:
            self.observer.message(exc.message)
            return 0
        if spooled:
            self.pending = spooled + self.pending
            self._save_pending()
        return len(spooled)

    def tally_stored(self) -> None:
        """Take over the `generator` of the intervals stored before (by the collector that
        died): the run's summary covers them too."""
        projection = {"generator": 1, "windowStart": 1, "intervalSec": 1}
        try:
            for doc in self.store.metrics.iter_for_run(self.run.id, projection):
                start = doc.get("windowStart")
                moment = start.timestamp() if isinstance(start, datetime) else None
                self.generator.add(moment, doc.get("intervalSec"), doc.get("generator"))
        except DatabaseError as exc:
            self.observer.message(f"the load generator's earlier readings: {exc.message}")

    def write_final(self, changes: dict[str, Any]) -> LoadTestRun | None:
        """Store the run's end if this collector still holds it; None if someone else did."""
        self._save_pending()
        updated = self.store.runs.update(
            self.run.id,
            {**self.events.fields(), **changes},
            only_if_status=[s.value for s in RunStatus if s.is_active],
            epoch=self.epoch,
        )
        self.store.leases.release(lease_id(self.run.locustClusterId), self.run.id)
        return updated
