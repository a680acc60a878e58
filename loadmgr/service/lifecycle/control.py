"""Acting on a run that exists: collecting it, taking it over, stopping it, watching it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loadmgr.errors import ClusterError, Conflict
from loadmgr.models import (
    LOCAL_CLUSTER_ID,
    LoadTestRun,
    LocustCluster,
    MetricSnapshot,
    RunStatus,
    StopReason,
    utcnow,
)
from loadmgr.service.collection import Collector, CollectorSettings, RunObserver, recorded_client
from loadmgr.service.lifecycle.end import end_plan
from loadmgr.service.runs.lease import is_stale
from loadmgr.service.runs.local_master import UntrustedAddress, refuse_untrusted
from loadmgr.service.runs.lookup import get_run

if TYPE_CHECKING:
    from loadmgr.models.documents import LocustfileBundle
    from loadmgr.store import Store

STOP_WAIT_SEC = 150.0  # a live collector gets this long to record the end after /stop
# `runs stop` only asks Locust to stop (the collector, live or taken over, asks too, and
# run_time ends the load regardless): it waits this long for the whole answer, not 90 s.
STOP_ASK_SEC = 15.0
WATCH_POLL_SEC = 2.0

Notify = Callable[[str], None]


def cluster_of(store: Store, run: LoadTestRun) -> LocustCluster | None:
    """The registered cluster a run is on; None for the built-in local one."""
    if run.locustClusterId == LOCAL_CLUSTER_ID:
        return None
    from loadmgr.service.definitions.clusters import get_cluster

    return get_cluster(store, run.locustClusterId)


def collector_for(
    store: Store,
    run: LoadTestRun,
    *,
    home: Path,
    observer: RunObserver,
    stop_event: threading.Event,
    settings: CollectorSettings | None = None,
    cluster: LocustCluster | None = None,
    locustfile: str | LocustfileBundle | None = None,
) -> Collector:
    """A collector for `run`, with its cluster, settings and (local) locustfile resolved."""
    if cluster is None:
        cluster = cluster_of(store, run)
    if locustfile is None and run.status == RunStatus.PENDING and cluster is None:
        from loadmgr.service.definitions.tests import get_test

        # A run of `runs start --locustfile` carries the files it runs; others the test's.
        locustfile = run.locustfileBundle or run.locustfileContent
        if locustfile is None:
            test = get_test(store, run.loadTestId)
            locustfile = test.locustfileBundle or test.locustfileContent
    return Collector(
        store,
        run,
        cluster=cluster,
        settings=settings or CollectorSettings.from_run(run),
        home=home,
        observer=observer,
        stop_event=stop_event,
        locustfile=locustfile,
        end=end_plan(),
    )


def claim_stale_run(store: Store, run: LoadTestRun) -> LoadTestRun:
    """Become the collector of a run whose collector died; exactly one claimant wins."""
    settings = CollectorSettings.from_run(run)
    document = {**(run.collector or {}), **settings.to_document()}
    claimed = store.runs.claim(
        run.id, run.collectorEpoch, {"collector": document, "heartbeatAt": store.server_now()}
    )
    if claimed is None:
        raise Conflict(f"run {run.id} was taken over by someone else first")
    return claimed


def wait_while_pending(store: Store, run_id: str, timeout: float) -> LoadTestRun:
    """The run once it left `Pending` (its load runs, or it failed), or at the timeout."""
    deadline = time.monotonic() + timeout
    run = get_run(store, run_id)
    while run.status == RunStatus.PENDING and time.monotonic() < deadline:
        time.sleep(0.25)
        run = get_run(store, run_id)
    return run


def stop_run(
    store: Store, run: LoadTestRun, *, user: str, home: Path, notify: Notify
) -> LoadTestRun:
    """Stop the load and have the run recorded `Finished` (stopReason user).

    A live collector records the end itself; for a run whose collector is gone, this
    records it. Raises Conflict if a live collector never ends it.
    """
    marked = store.runs.update(
        run.id,
        {
            "status": RunStatus.STOPPING.value,
            "stopRequested": True,
            "updatedAt": utcnow(),
            "updatedBy": user,
        },
        only_if_status=[s.value for s in RunStatus if s.is_active],
    )
    run = marked or get_run(store, run.id)
    cluster = cluster_of(store, run)
    # A run that has not swarmed yet (Pending, maybe waiting for a busy Locust) has no load
    # of its own there: a /stop now would end someone else's test.
    untrusted: UntrustedAddress | None = None
    if run.startedAt is not None and (run.locustUrl or cluster is not None):
        try:
            with recorded_client(cluster, run, stop_timeout=STOP_ASK_SEC) as client:
                client.stop()
        except UntrustedAddress as exc:
            untrusted = exc  # nothing sent: said once the run is left to its collector
        except ClusterError as exc:
            notify(f"could not reach Locust to stop it: {exc.message}")
    deadline = time.monotonic() + STOP_WAIT_SEC
    while run.status.is_active:
        if is_stale(run, store.server_now()):
            if untrusted is None:
                notify("no live collector: recording the end of the run")
            orphan = Collector(
                store,
                run,
                cluster=cluster,
                settings=CollectorSettings.from_run(run),
                home=home,
                end=end_plan(),
            )
            run = orphan.finish_orphan(StopReason.USER)  # Locust is not contacted either
            break
        if untrusted is not None:
            break  # its live collector stops the Locust it started, through its own client
        if time.monotonic() >= deadline:
            raise Conflict(
                f"run {run.id} is still {run.status.value}; its collector has not ended it"
            )
        time.sleep(0.5)
        run = get_run(store, run.id)
    if untrusted is not None:
        raise UntrustedAddress(f"run {run.id}: {untrusted.message}")
    return run


def watch_run(
    store: Store, run: LoadTestRun, observer: RunObserver, interval: float
) -> LoadTestRun:
    """Show the intervals another collector records until the run ends or goes stale."""
    observer.started(run)
    last_seq = -1
    while run.status.is_active and not is_stale(run, store.server_now()):
        last_seq = _show_latest(store, run, observer, last_seq)
        time.sleep(min(interval, WATCH_POLL_SEC))
        run = get_run(store, run.id)
    # The last intervals, recorded as the run ended, before the end is shown.
    _show_latest(store, run, observer, last_seq)
    observer.finished(run)
    return run


def _show_latest(store: Store, run: LoadTestRun, observer: RunObserver, last_seq: int) -> int:
    """Show the run's latest interval if it is new; returns the seq shown last."""
    latest = store.metrics.latest(run.id)
    if latest is None or latest.get("seq", 0) == last_seq:
        return last_seq
    snapshot = MetricSnapshot.model_validate(latest)
    observer.interval(run, snapshot)
    return snapshot.seq


@dataclass(frozen=True)
class Followed:
    """How `runs follow` left a run: ended (or interrupted while we collected it), or
    still going when Ctrl-C stopped only the watching."""

    run: LoadTestRun
    interrupted: bool = False  # we had taken over, and Ctrl-C stopped the run
    stopped_watching: bool = False  # another collector's run goes on without us


def follow_run(
    store: Store,
    run: LoadTestRun,
    *,
    home: Path,
    observer: Callable[[], RunObserver],
    notify: Notify,
) -> Followed:
    """Watch a run to its end, taking over its collecting when its collector died.

    An ended run gets its end steps finished (`finish_end_steps`). A stale one (its
    collector stopped reporting) is claimed and collected here; a live one is watched,
    and claimed if its collector dies meanwhile. `observer` makes the observer of each
    phase (watching, then collecting).
    """
    if not run.status.is_active:
        from loadmgr.service.lifecycle.end import finish_end_steps

        notify(f"run {run.id} is {run.status.value}")
        return Followed(finish_end_steps(store, run, notify))
    if not is_stale(run, store.server_now()):
        interval = CollectorSettings.from_run(run).interval
        watching = observer()
        try:
            run = watch_run(store, run, watching, interval)
        except KeyboardInterrupt:
            return Followed(run, stopped_watching=True)
        if not run.status.is_active:
            return Followed(run)
    if run.locustClusterId == LOCAL_CLUSTER_ID:
        refuse_untrusted(run.locustUrl, run.collector)  # exit 6 before the run is claimed
    claimed = claim_stale_run(store, run)
    notify(f"run {run.id}: its collector stopped reporting; taking over")
    return collect_run(store, claimed, home=home, observer=observer(), take_over=True)


def collect_run(
    store: Store, run: LoadTestRun, *, home: Path, observer: RunObserver, take_over: bool = False
) -> Followed:
    """Collect `run` here to its end (a detached run's collector; `take_over`: one whose
    collector died, claimed first), SIGINT and SIGTERM stopping the run."""
    from loadmgr.service.lifecycle.signals import stop_on_signals

    stop_event = threading.Event()
    collector = collector_for(store, run, home=home, observer=observer, stop_event=stop_event)
    with stop_on_signals(stop_event):
        final = collector.take_over() if take_over else collector.execute()
    return Followed(final, collector.interrupted)
