"""A run resolved against its test (the load it will really use), and recorded `Pending`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from loadmgr.errors import NotFound, ValidationFailed
from loadmgr.models import (
    LOCAL_CLUSTER_ID,
    LOCAL_WORKERS_MAX,
    LoadTest,
    LoadTestRun,
    LocustCluster,
    RunStatus,
    format_duration,
    merge_thresholds,
    utcnow,
)
from loadmgr.models.documents import LocustfileBundle, ServerMetric
from loadmgr.models.shapes import steps_shape
from loadmgr.models.thresholds import THRESHOLDS_MAX
from loadmgr.service.definitions.limits import check_run_load
from loadmgr.service.definitions.locustfiles import shape_of
from loadmgr.service.definitions.tests import check_not_foreign, get_test
from loadmgr.service.documents import stamp_for
from loadmgr.service.runs.locustfile import choose_locustfile
from loadmgr.service.runs.options import (
    BUSY_POLICIES,
    RunOptions,
    check_interval,
    check_lost_timeout,
    optional_saturation,
)
from loadmgr.service.runs.steps import planned_steps, refuse_steps_with_shape, steps_duration
from loadmgr.service.validation import validation_failed

if TYPE_CHECKING:
    from loadmgr.store import Store


@dataclass(frozen=True)
class RunPlan:
    """A run resolved against its test: the load it will really use."""

    test: LoadTest
    cluster: LocustCluster | None  # None: the built-in local cluster
    run: LoadTestRun
    options: RunOptions
    locustfile: str | LocustfileBundle | None = None  # what a local cluster runs
    locustfile_drift: str | None = None  # why the stored copy may not be what is meant

    @property
    def cluster_id(self) -> str:
        return self.run.locustClusterId


def plan_run(store: Store, test_ref: str | LoadTest, options: RunOptions, user: str) -> RunPlan:
    """Resolve test and overrides, refusing an impossible override before anything is
    stored; `test_ref` names the test, or is the test itself (one not stored yet)."""
    check_interval(options.interval)
    check_lost_timeout(options.lost_timeout)
    if options.if_busy not in BUSY_POLICIES:
        raise ValidationFailed(f"invalid --if-busy {options.if_busy!r} (one of fail, wait, skip)")
    if options.users is not None and options.users < 1:
        raise ValidationFailed(f"invalid --users: {options.users} (at least 1)")
    if options.spawn_rate is not None and not options.spawn_rate > 0:
        raise ValidationFailed(f"invalid --spawn-rate: {options.spawn_rate:g} (must be above 0)")
    if options.duration is not None and options.duration <= 0:
        raise ValidationFailed("invalid --duration: must be above 0")
    if options.workers is not None and not 0 <= options.workers <= LOCAL_WORKERS_MAX:
        raise ValidationFailed(
            f"invalid --workers: {options.workers} (0, one standalone Locust, "
            f"to {LOCAL_WORKERS_MAX})"
        )
    check_locust_config(options)
    from loadmgr.service.runs.folders import keep_sec, log_max_bytes

    log_max_bytes(), keep_sec()  # a bad setting is exit 2 now, not a Failed run later
    test = test_ref if isinstance(test_ref, LoadTest) else get_test(store, test_ref)
    check_not_foreign(test, "run")
    check_run_load(test, options.users, options.spawn_rate)
    steps = planned_steps(test, options)
    duration = options.duration if options.duration is not None else test.defaultDurationSec
    if steps is not None:
        check_run_load(test, max(steps["users"]), options.spawn_rate)
        duration = steps_duration(steps, options.duration)
    if test.maxDurationSec is not None and duration > test.maxDurationSec:
        raise ValidationFailed(
            f"invalid --duration: {format_duration(duration)} is above the test's maximum "
            f"of {format_duration(test.maxDurationSec)}"
        )
    warmup = options.warmup if options.warmup is not None else test.warmupSec
    if warmup < 0 or warmup >= duration:
        raise ValidationFailed(
            f"invalid --warmup: {format_duration(warmup)} must be shorter than the run "
            f"({format_duration(duration)})"
        )
    # An empty --cluster names no cluster (exit 4), never silently the test's own.
    cluster_id = (test.locustClusterId if options.cluster is None else options.cluster).strip()
    cluster = None
    if cluster_id != LOCAL_CLUSTER_ID:
        cluster = store.clusters.find_by_id(cluster_id)
        if cluster is None:
            raise NotFound(f"cluster {cluster_id!r} not found{store.scope.describe()}")
        from loadmgr.locust.auth import check_references

        # Before anything is stored or sent: the cluster's auth may name a variable or file
        # this machine keeps for itself (whoever writes the database chose the names).
        check_references(cluster.auth)
    locustfile = choose_locustfile(test, cluster_id, options)
    shape = shape_of(locustfile.content, locustfile.bundle, locustfile.name) or test.shape
    if steps is not None:
        refuse_steps_with_shape(shape)
        shape = steps_shape(steps)
    locust_options = checked_locust_options(test.locustOptions, options.locust_options)
    if cluster is not None:
        check_remote_options(locust_options, cluster_id)
    if options.locust_config is not None and cluster is not None:
        raise ValidationFailed(
            f"--locust-config is read by the local cluster only; cluster {cluster_id!r} "
            "reads its own configuration"
        )
    try:
        thresholds = merge_thresholds(test.thresholds, options.thresholds)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    if len(thresholds) > THRESHOLDS_MAX:
        raise ValidationFailed(
            f"too many thresholds: the test's with --threshold make {len(thresholds)} "
            f"(at most {THRESHOLDS_MAX} a run)",
            hint="replace some of the test's (same metric and request) rather than adding",
        )
    server_metrics = merged_server_metrics(test.serverMetrics, options.server_metrics, thresholds)
    from loadmgr.service.runs.ci import run_ci

    ci = run_ci(options.ci, options.locustfile or test.locustfile)
    now = utcnow()
    try:
        run = LoadTestRun(
            loadTestId=test.id,
            testName=test.name,
            name=options.name or f"{test.name} {now:%Y-%m-%dT%H:%M:%SZ}",
            targetUsers=(
                max(steps["users"])
                if steps is not None
                else options.users if options.users is not None else test.defaultUsers
            ),
            spawnRate=(
                options.spawn_rate if options.spawn_rate is not None else test.defaultSpawnRate
            ),
            durationSeconds=duration,
            status=RunStatus.PENDING,
            metadata={**options.metadata},
            locustClusterId=cluster_id,
            targetUrl=test.targetUrl,
            locustfileSha256=locustfile.sha256,
            locustfileOverride=locustfile.name if options.locustfile is not None else None,
            locustfileContent=locustfile.content if options.locustfile is not None else None,
            locustfileBundle=locustfile.bundle if options.locustfile is not None else None,
            locustOptions=locust_options,
            # The shape its locustfile declares (Locust's own answer may add one at swarm).
            shape=shape,
            steps=steps,
            thresholds=thresholds,
            serverMetrics=server_metrics,
            warmupSec=warmup,
            saturationCpuPct=(
                optional_saturation(options.saturation_cpu)
                if options.saturation_cpu is not None
                else test.saturationCpuPct
            ),
            collectorEpoch=1,  # the first collector's; each take-over moves it on
            busyWaitUntil=(
                now + timedelta(seconds=options.wait_timeout) if options.if_busy == "wait" else None
            ),
            trigger=options.trigger if options.trigger is not None else {"user": user},
            ci=ci,
            **stamp_for(test, user, now),
        )
    except ValidationError as exc:
        raise validation_failed(exc) from None
    return RunPlan(test, cluster, run, options, locustfile.source, locustfile.drift)


def merged_server_metrics(
    base: list[ServerMetric], overrides: list[dict[str, Any]], thresholds: list[str]
) -> list[ServerMetric]:
    """The test's server metrics with the run's over them; ValidationFailed for a
    threshold on a server metric the run does not read."""
    from loadmgr.models import parse_threshold
    from loadmgr.models.documents.server import server_metric_key
    from loadmgr.service.server_metrics.definitions import merged

    metrics = merged(base, [ServerMetric.model_validate(m) for m in overrides])
    names = {server_metric_key(m.name) for m in metrics}
    for expression in thresholds:
        metric = parse_threshold(expression).metric
        if metric.startswith("server.") and metric not in names:
            raise ValidationFailed(
                f"threshold {expression!r} names {metric}, which the run does not read",
                hint="add it with --server-metric (and --source)",
            )
    return metrics


def checked_locust_options(stored: dict[str, str], given: dict[str, str]) -> dict[str, str]:
    """The test's Locust options with the run's over them, each checked again: the test's
    (and a schedule's) come from the database, which need not have gone through the CLI;
    ValidationFailed (exit 2, nothing sent) for a refused one."""
    from loadmgr.models.locust_options import check_stored_options

    try:
        return check_stored_options({**check_stored_options(stored), **check_stored_options(given)})
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


def check_remote_options(options: dict[str, str], cluster_id: str) -> None:
    """A remote master takes only a locustfile's custom arguments, through /swarm: it would
    set any of Locust's own options a field names (`html_file` writes a report there, on
    the shared master), and take `tags=a` for the letters of 'a'."""
    from loadmgr.models.locust_options import remote_builtin

    refused = remote_builtin(options)
    if refused is not None:
        raise ValidationFailed(
            f"--locust-option {refused} is Locust's own option and cannot be handed to "
            f"cluster {cluster_id!r} through its web API",
            hint="start that Locust with the option itself, or run on --cluster local",
        )


def check_locust_config(options: RunOptions) -> None:
    """`--locust-config PATH` must name a readable file (the local cluster reads it)."""
    if options.locust_config is None:
        return
    from pathlib import Path

    from loadmgr.local_files import read_regular_file

    read_regular_file(Path(options.locust_config), "Locust config", max_bytes=1_000_000)


def record_pending(store: Store, plan: RunPlan) -> LoadTestRun:
    """Record the run `Pending`; NotFound (and no run) if its test was deleted meanwhile.

    `tests delete` removes the test and then looks for runs; this inserts the run and
    then looks for the test (see `delete_test`): one of the two always sees the other.
    """
    store.ensure_indexes()
    run = store.runs.insert(plan.run)
    if store.tests.find_by_id(plan.test.id) is None:
        store.runs.delete_pending(run.id)
        raise NotFound(
            f"test {plan.test.name!r} was deleted while the run was starting; nothing ran"
        )
    return run
