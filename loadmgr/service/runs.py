"""A run's start: resolving the load, taking the cluster's lease, recording it; and lookups."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from loadmgr.errors import ClusterBusy, NotFound, ValidationFailed
from loadmgr.models import (
    LOCAL_CLUSTER_ID,
    LoadTest,
    LoadTestRun,
    LocustCluster,
    RunStatus,
    Verdict,
    format_duration,
    merge_thresholds,
    utcnow,
)
from loadmgr.service.load_limits import check_run_load
from loadmgr.service.load_tests import check_not_foreign, get_test
from loadmgr.service.run_locustfile import choose_locustfile
from loadmgr.service.validation import check_list_limit, validation_failed

if TYPE_CHECKING:
    from loadmgr.store import Store

DEFAULT_INTERVAL_SEC = 5
BUSY_POLICIES = ("fail", "wait", "skip")


def lease_ttl(interval: float) -> float:
    """How long a lease lives without a heartbeat (one at least every 5 s): 30 s."""
    return 30.0


def stale_after(interval: float) -> float:
    """A collector silent this long is taken for dead (LOADMGR_STALE_AFTER_SEC overrides)."""
    override = os.environ.get("LOADMGR_STALE_AFTER_SEC")
    if override:
        try:
            return max(1.0, float(override))
        except ValueError:
            pass
    # Heartbeats come at least every 5 s, whatever the interval: three missed is dead.
    return 15.0


def lease_id(cluster_id: str) -> str:
    """The lease key: a remote cluster is shared; `local` is one per machine."""
    if cluster_id == LOCAL_CLUSTER_ID:
        return f"{LOCAL_CLUSTER_ID}@{socket.gethostname()}"
    return cluster_id


@dataclass(frozen=True)
class RunOptions:
    """What `runs start` may override, and how it behaves."""

    users: int | None = None
    spawn_rate: float | None = None
    duration: int | None = None
    name: str | None = None
    cluster: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    thresholds: list[str] = field(default_factory=list)
    interval: int = DEFAULT_INTERVAL_SEC
    if_busy: str = "fail"
    wait_timeout: float = 600.0
    lost_timeout: float = 30.0
    workers: int | None = None
    abort_on_fail: bool = False
    warmup: int | None = None
    # What started the run (a schedule's slot); None: the acting user.
    trigger: dict[str, Any] | None = None
    locustfile: str | None = None  # a path: run this file once instead of the stored copy
    strict_locustfile: bool = False  # a stored copy that differs from its file is an error


@dataclass(frozen=True)
class RunPlan:
    """A run resolved against its test: the load it will really use."""

    test: LoadTest
    cluster: LocustCluster | None  # None: the built-in local cluster
    run: LoadTestRun
    options: RunOptions
    locustfile: str | None = None  # the content a local cluster runs
    locustfile_drift: str | None = None  # why the stored copy may not be what is meant

    @property
    def cluster_id(self) -> str:
        return self.run.locustClusterId


def plan_run(store: Store, test_ref: str, options: RunOptions, user: str) -> RunPlan:
    """Resolve test and overrides, refusing an impossible override before anything is stored."""
    from loadmgr.service.collection.settings import check_interval, check_lost_timeout

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
    if options.workers is not None and options.workers < 0:
        raise ValidationFailed("invalid --workers: 0 (one standalone Locust) or more")
    test = get_test(store, test_ref)
    check_not_foreign(test, "run")
    check_run_load(test, options.users, options.spawn_rate)
    duration = options.duration if options.duration is not None else test.defaultDurationSec
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
    locustfile = choose_locustfile(test, cluster_id, options)
    try:
        thresholds = merge_thresholds(test.thresholds, options.thresholds)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    now = utcnow()
    try:
        run = LoadTestRun(
            loadTestId=test.id,
            testName=test.name,
            name=options.name or f"{test.name} {now:%Y-%m-%d %H:%M:%S}",
            tenantId=test.tenantId,
            envId=test.envId,
            targetUsers=options.users if options.users is not None else test.defaultUsers,
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
            thresholds=thresholds,
            warmupSec=warmup,
            collectorEpoch=1,  # the first collector's; each take-over moves it on
            busyWaitUntil=(
                now + timedelta(seconds=options.wait_timeout) if options.if_busy == "wait" else None
            ),
            trigger=options.trigger if options.trigger is not None else {"user": user},
            createdAt=now,
            createdBy=user,
            updatedAt=now,
            updatedBy=user,
        )
    except ValidationError as exc:
        raise validation_failed(exc) from None
    return RunPlan(test, cluster, run, options, locustfile.content, locustfile.drift)


def take_lease(store: Store, plan: RunPlan, notify: Any = None) -> bool:
    """Take the cluster's lease for the run; False when `--if-busy skip` found it busy."""
    key = lease_id(plan.cluster_id)
    ttl = lease_ttl(plan.options.interval)
    deadline = time.monotonic() + plan.options.wait_timeout
    announced = False
    while True:
        # The server's clock: a host clock behind or ahead must neither steal nor keep a lease.
        if store.leases.acquire(key, plan.run.id, store.server_now(), ttl):
            return True
        holder = store.leases.holder(key) or {}
        busy = f"cluster {plan.cluster_id!r} is busy with run {holder.get('runId')}"
        if plan.options.if_busy == "skip":
            return False
        if plan.options.if_busy == "fail":
            raise ClusterBusy(busy, hint="use --if-busy wait to queue, or --if-busy skip")
        if time.monotonic() >= deadline:
            raise ClusterBusy(f"{busy}; gave up after waiting {plan.options.wait_timeout:g}s")
        if not announced and notify is not None:
            notify(f"{busy}; waiting (up to {format_duration(plan.options.wait_timeout)})")
            announced = True
        time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


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


def get_run(store: Store, run_id: str) -> LoadTestRun:
    """A run by id, else by a unique prefix of its id (8 characters or more)."""
    from loadmgr.service.refs import id_by_prefix, too_short_hint

    run = store.runs.find_by_id(run_id)
    if run is None:
        full_id = id_by_prefix(store.runs, run_id, "run", store.scope.describe())
        run = store.runs.find_by_id(full_id) if full_id else None
    if run is None:
        raise NotFound(
            f"run {run_id!r} not found{store.scope.describe()}", hint=too_short_hint(run_id)
        )
    return run


def _seconds_since(value: object, now: datetime | None) -> float | None:
    """Seconds from a stored or JSON date to `now`; None when there is no date."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return ((now or datetime.now(timezone.utc)) - value).total_seconds()


def heartbeat_age(run: LoadTestRun | dict[str, Any], now: datetime | None = None) -> float | None:
    """Seconds since the collector last reported, None if it never did."""
    beat = run.get("heartbeatAt") if isinstance(run, dict) else run.heartbeatAt
    return _seconds_since(beat, now)


def is_stale(run: LoadTestRun | dict[str, Any], now: datetime | None = None) -> bool:
    """An active run whose collector has gone silent (died, or its machine did)."""
    data = run if isinstance(run, dict) else run.model_dump()
    status = data.get("status")
    status = status.value if isinstance(status, RunStatus) else status
    if status not in [s.value for s in RunStatus if s.is_active]:
        return False
    from loadmgr.service.collection.settings import collector_gone

    if collector_gone(data.get("collector")):
        return True  # its process on this machine is gone: no need to wait for silence
    interval = float((data.get("collector") or {}).get("interval") or DEFAULT_INTERVAL_SEC)
    age = heartbeat_age(data, now)
    if age is None:
        since_created = _seconds_since(data.get("createdAt"), now)
        if since_created is None:
            return True
        # A Pending run gets time to start its cluster before it counts as abandoned.
        return since_created > stale_after(interval) + 120
    if status == RunStatus.PENDING.value:
        # Starting a local cluster (up to a minute) sends no heartbeat; a dead starter on
        # this machine is caught at once above.
        return age > stale_after(interval) + 120
    return age > stale_after(interval)


def list_runs(
    store: Store,
    *,
    test_ref: str | None = None,
    statuses: list[str] | None = None,
    verdicts: list[str] | None = None,
    since: datetime | None = None,
    limit: int = 50,
    tags: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Runs, newest first, each with `stale` computed.

    `verdicts`: passed, failed, aborted, error, or none (runs without a verdict).
    `tags`: only runs of tests that have every one of these tags (as they are now).
    """
    check_list_limit(limit)
    valid = [s.value for s in RunStatus]
    normalized = []
    for status in statuses or []:
        match = next((v for v in valid if v.lower() == status.strip().lower()), None)
        if match is None:
            raise ValidationFailed(f"invalid --status {status!r} (one of {', '.join(valid)})")
        normalized.append(match)
    wanted = [parse_verdict_filter(verdict) for verdict in verdicts or []]
    test_id = get_test(store, test_ref).id if test_ref is not None else None
    tagged = None
    if tags:
        tagged = [str(t["id"]) for t in store.tests.find_many(tags=tags, limit=0) if t.get("id")]
    runs = store.runs.find_many(
        test_id=test_id,
        statuses=normalized,
        verdicts=wanted,
        since=since,
        limit=limit,
        test_ids=tagged,
    )
    now = store.server_now()
    for run in runs:
        run["stale"] = is_stale(run, now)
    return runs


VERDICT_FILTERS = (*(v.value for v in Verdict), "none")


def parse_verdict_filter(text: str) -> str | None:
    """`--verdict`: a verdict's value, or None for `none` (runs without one)."""
    cleaned = text.strip().lower()
    if cleaned not in VERDICT_FILTERS:
        raise ValidationFailed(
            f"invalid --verdict {text!r} (one of {', '.join(VERDICT_FILTERS)})"
        )
    return None if cleaned == "none" else cleaned


def since_cutoff(text: str) -> datetime:
    """`--since`: a duration back from now (`2h`, `7d`) or an ISO date."""
    from loadmgr.models import parse_duration

    cleaned = text.strip().lower()
    if cleaned.endswith("d") and cleaned[:-1].isdigit():
        try:
            return datetime.now(timezone.utc) - timedelta(days=int(cleaned[:-1]))
        except OverflowError:  # further back than year 1, or than timedelta can count
            raise ValidationFailed(
                f"invalid --since {text!r}: further back than dates go", hint="e.g. 7d or 2h"
            ) from None
    try:
        return datetime.now(timezone.utc) - timedelta(seconds=parse_duration(cleaned))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"invalid --since {text!r} (a duration back from now like 2h or 7d, "
            "or an ISO date like 2026-11-01)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
