"""`runs start` as one service call: plan, lease, record, then collect here or detach.

The CLI parses options and renders; everything a run's life needs between those two is
here, so that a cron job, a schedule tick or a test drives a run the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ClusterBusy, ClusterError, LoadmgrError
from loadmgr.models import LoadTestRun, RunStatus
from loadmgr.service.collection import CollectorSettings, QuietObserver, RunObserver
from loadmgr.service.runs.lease import lease_id, take_lease
from loadmgr.service.runs.options import RunOptions
from loadmgr.service.runs.plan import plan_run, record_pending

if TYPE_CHECKING:
    from loadmgr.config import Settings
    from loadmgr.store import Store

DETACH_START_TIMEOUT_SEC = 150.0

Notify = Callable[[str], None]


@dataclass
class StartOutcome:
    """How `start_run` ended: the run as recorded (None when skipped)."""

    run: LoadTestRun | None
    skipped: bool = False
    interrupted: bool = False
    log: Path | None = None  # the background collector's log, with --detach


class StartFailed(ClusterError):
    """The run was recorded Failed before or while it started; `run` is that record."""

    def __init__(self, error: LoadmgrError, run: LoadTestRun) -> None:
        super().__init__(error.message, hint=error.hint)
        self.exit_code = error.exit_code
        self.run = run


def start_run(
    store: Store,
    settings: Settings,
    test_ref: str,
    options: RunOptions,
    *,
    observer: RunObserver,
    notify: Notify,
    detach: bool = False,
    baseline: dict[str, float] | None = None,
    trend: dict[str, Any] | None = None,
    wait_started: bool = True,
    floors: dict[str, Any] | None = None,
) -> StartOutcome:
    """Run a test from its plan to its recorded end (or, detached, until its load runs).

    Raises before anything is stored for an impossible plan (ValidationFailed, NotFound),
    ClusterBusy when the cluster is busy and `--if-busy fail`, and StartFailed (with the
    Failed run) when the cluster could not start it. With `baseline`, the finished run is
    compared with the test's baseline and the result joins its verdict; with `trend` (a
    TrendOptions document), it is judged against the test's recent runs (trends.py).
    Detached without `wait_started` (a schedule's tick), it returns once the collector is
    spawned, before the load runs: a failure to start is then the collector's to record.
    """
    if trend is not None:
        from loadmgr.service.analysis.change_points import require_ruptures

        require_ruptures()  # without the extra: exit 2 before anything is read or run
    plan = plan_run(store, test_ref, options, settings.user)
    if options.server_metrics:
        from loadmgr.service.server_metrics.definitions import check_server_metrics

        # The run's own: refused now if Prometheus refuses them (the test's were checked
        # when defined); a source that does not answer is a warning, the run asks again.
        check_server_metrics(store, options.server_metrics, notify)
    if plan.cluster is None:
        _prune_old_run_folders(store, settings.home, notify)
    else:
        from loadmgr.service.runs.locustfile import check_remote_locustfile

        check_remote_locustfile(plan.cluster, plan.run, options.strict_locustfile, notify)
    if plan.locustfile_drift:
        notify(f"warning: {plan.locustfile_drift}")
    if baseline is not None:
        from loadmgr.service.analysis.compare import DEFAULT_MAX_REGRESSION, baseline_run

        baseline_run(store, plan.test.id)  # no baseline → exit 2/4 before any load
        baseline = baseline or dict(DEFAULT_MAX_REGRESSION)
        plan.run.metadata.setdefault("compareBaseline", "true")
        # Applied by whichever collector records the end (service/lifecycle/end.py).
        plan.run.requestedChecks["baseline"] = baseline
        if floors:  # `--floor` (floors_document): over the test's own
            plan.run.requestedChecks["floors"] = floors
    if trend is not None:
        plan.run.requestedChecks["trend"] = trend
    if plan.cluster is not None and not plan.cluster.verifyTls:
        if plan.cluster.baseUrl.lower().startswith("https:"):
            notify(
                f"warning: the https certificate of {plan.cluster.baseUrl} is not verified "
                "(--insecure)"
            )
    collector_settings = CollectorSettings(
        interval=int(options.interval),
        lost_timeout=options.lost_timeout,
        workers=options.workers,
        abort_on_fail=options.abort_on_fail,
        locust_config=options.locust_config,
    )
    plan.run.collector = collector_settings.to_document()
    store.ensure_indexes()
    if not take_lease(store, plan, notify):
        notify(f"skipped: cluster {plan.cluster_id!r} is busy (--if-busy skip)")
        return StartOutcome(None, skipped=True)
    if detach and options.if_busy == "skip" and plan.cluster is not None:
        from loadmgr.service.definitions.clusters import busy_outside_loadmgr

        # In the foreground the collector finds a busy Locust itself and skips; detached, it
        # would only find it after this returned, and record the run Failed.
        busy = busy_outside_loadmgr(plan.cluster)
        if busy is not None:
            store.leases.release(lease_id(plan.cluster_id), plan.run.id)
            notify(f"skipped: {busy} (--if-busy skip)")
            return StartOutcome(None, skipped=True)
    try:
        run = record_pending(store, plan)
    except BaseException:
        store.leases.release(lease_id(plan.cluster_id), plan.run.id)
        raise
    notify(f"run {run.id} of test {plan.test.name!r} recorded")
    if detach:
        return _detach(store, settings, run, notify, wait_started)
    from loadmgr.service.lifecycle.control import collector_for
    from loadmgr.service.lifecycle.signals import stop_on_signals

    stop_event = threading.Event()
    collector = collector_for(
        store,
        run,
        home=settings.home,
        observer=observer,
        stop_event=stop_event,
        settings=collector_settings,
        cluster=plan.cluster,
        locustfile=plan.locustfile,
    )
    collector.skip_if_busy = options.if_busy == "skip"
    with stop_on_signals(stop_event):
        try:
            final = collector.execute()
        except ClusterBusy:
            if collector.skip_if_busy:
                notify(f"skipped: cluster {plan.cluster_id!r} is busy with another test")
                return StartOutcome(None, skipped=True)
            raise
        except ClusterError as exc:
            if not collector.run.status.is_active:
                raise StartFailed(exc, collector.run) from None
            raise
    return StartOutcome(final, interrupted=collector.interrupted)


def _prune_old_run_folders(store: Store, home: Path, notify: Callable[[str], None]) -> None:
    """Old run folders removed before a local run (a bounded time); never fails the run."""
    from loadmgr.service.runs.folders import PRUNE_BUDGET_SEC, keep_sec, prune_run_folders

    try:
        pruned = prune_run_folders(store, home, older_than=keep_sec(), budget_sec=PRUNE_BUDGET_SEC)
    except (OSError, LoadmgrError) as exc:
        notify(f"warning: could not remove old run folders: {exc}")
        return
    if pruned.removed:
        notify(
            f"removed {len(pruned.removed)} run folder(s) older than the "
            f"LOADMGR_RUN_FILES_KEEP age ({pruned.freed / 1e6:.1f} MB)"
        )


def _failed_to_detach(
    store: Store, settings: Settings, run: LoadTestRun, exc: LoadmgrError
) -> LoadTestRun:
    from loadmgr.service.lifecycle.control import collector_for

    collector = collector_for(
        store, run, home=settings.home, observer=QuietObserver(), stop_event=threading.Event()
    )
    return collector.record_start_failure(exc)


def _detach(
    store: Store, settings: Settings, run: LoadTestRun, notify: Notify, wait_started: bool
) -> StartOutcome:
    """Hand the run to a background collector; return once the load runs (or failed)."""
    from loadmgr.service.lifecycle.control import wait_while_pending
    from loadmgr.service.runs.background import spawn_collector

    try:
        log = spawn_collector(settings, run.id)
    except LoadmgrError as exc:
        # Nothing will collect it: the run is recorded Failed and its lease freed, not left
        # Pending with the cluster held (a file where $LOADMGR_HOME/logs must be).
        raise StartFailed(exc, _failed_to_detach(store, settings, run, exc)) from None
    notify(f"collecting in the background; log: {log}")
    if not wait_started:
        return StartOutcome(run, log=log)
    run = wait_while_pending(store, run.id, DETACH_START_TIMEOUT_SEC)
    if run.status == RunStatus.FAILED:
        error = ClusterError(f"run {run.id} failed to start: {run.error}", hint=f"see {log}")
        raise StartFailed(error, run)
    return StartOutcome(run, log=log)
