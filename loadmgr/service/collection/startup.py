"""What a collector needs before it follows a run: a local Locust, the plugin's version,
and the source of its intervals (new, or resumed right after the last stored interval)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ClusterError, ExitCode, Interrupted, LoadmgrError, ValidationFailed
from loadmgr.local_files import ensure_directory
from loadmgr.locust.seconds import InvalidPayload
from loadmgr.models import LoadTestRun, utcnow
from loadmgr.models.stats.generator import saturation_level
from loadmgr.service.collection.clocks import RunClock
from loadmgr.service.collection.settings import CollectorSettings, RunObserver
from loadmgr.service.collection.sources import PluginSource, StatsSource, moment
from loadmgr.service.collection.windows import WindowBuilder, max_windows, resume_state

if TYPE_CHECKING:
    from loadmgr.locust.client import LocustClient
    from loadmgr.locust.local import LocalCluster
    from loadmgr.models.documents import LocustfileBundle
    from loadmgr.store import Store

Source = PluginSource | StatsSource

# The test was swarmed a moment ago: its start on the master's clock is as far before the
# master's `now` as the swarm is before this machine's now (the same clock on each side, so
# no skew between hosts enters), within this slack.
START_SLACK_SEC = 10.0


class LocalFilesError(LoadmgrError):
    """LOADMGR_HOME cannot hold the run's files (disk full, read-only, not a directory)."""

    exit_code = ExitCode.DATABASE


def start_local_cluster(
    home: Path,
    run: LoadTestRun,
    locustfile: str | LocustfileBundle | None,
    settings: CollectorSettings,
    observer: RunObserver,
    stop_event: threading.Event,
) -> LocalCluster:
    """The built-in cluster for `run`, started, with its files under `home`/runs/RUN (a
    locustfile of several files in runs/RUN/locustfile/), given the run's Locust options.

    `cluster.stop()` is the caller's once it is returned; if starting fails, nothing is
    left running. A signal that arrived meanwhile stops it before any swarm.
    """
    if not locustfile:
        raise ClusterError("the test has no stored locustfile to run locally")
    from loadmgr.locust.local import LocalCluster
    from loadmgr.models.locust_options import command_line
    from loadmgr.service.runs.folders import log_max_bytes, runs_folder, write_locustfile

    try:  # checked again: the run's stored options may have been written after its plan
        locust_args = command_line(run.locustOptions)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    run_dir = runs_folder(home) / run.id
    try:
        ensure_directory(run_dir)
        paths = write_locustfile(run_dir, locustfile)
        config = settings.locust_config
        cluster = LocalCluster(
            paths,
            workers=settings.workers,
            log_dir=run_dir,
            locust_args=locust_args,
            config_file=Path(config) if config else None,
            log_max_bytes=log_max_bytes(),
        )
        observer.message(local_cluster_words(cluster.workers))
        if stop_event.is_set():
            raise Interrupted("interrupted before the local Locust started; no load was sent")
        cluster.start()
    except (NotADirectoryError, FileExistsError) as exc:
        raise ValidationFailed(
            f"cannot keep the run's files under {home}: {exc.strerror or exc} ({exc.filename})",
            hint="LOADMGR_HOME must be a directory loadmgr can write",
        ) from None
    except OSError as exc:
        raise LocalFilesError(
            f"cannot keep the run's files under {home}: {exc.strerror or exc}",
            hint="free disk space or fix permissions under LOADMGR_HOME",
        ) from None
    if stop_event.is_set():
        cluster.stop()
        raise Interrupted("interrupted while the local Locust started; no load was sent")
    return cluster


def local_cluster_words(workers: int) -> str:
    """What is started for the `local` cluster, as `--workers` asked."""
    if workers == 0:
        return "starting a standalone local Locust (one process, no workers: --workers 0)"
    plural = "worker" if workers == 1 else "workers"
    return f"starting a local Locust: a master and {workers} {plural}"


def plugin_version(client: LocustClient, observer: RunObserver) -> int | None:
    """The cluster's plugin protocol (None without the plugin); refuses an unknown one."""
    from loadmgr.locust.seconds import SUPPORTED_VERSIONS

    version = client.plugin_version()
    if version is not None and version not in SUPPORTED_VERSIONS:
        raise ClusterError(
            f"the cluster's loadmgr plugin speaks protocol {version}, which this loadmgr "
            "cannot read",
            hint="install the matching plugin: 'loadmgr clusters plugin --write PATH'",
        )
    if version is None:
        observer.message(
            "the cluster lacks the loadmgr plugin: intervals come from /stats/requests "
            "(percentiles are Locust's rolling window); see 'loadmgr clusters plugin'"
        )
    return version


def new_source(
    client: LocustClient,
    run: LoadTestRun,
    settings: CollectorSettings,
    plugin: int | None,
    sent_at: datetime,
) -> Source:
    """The source of a run that has just been swarmed."""
    if plugin is None:
        from loadmgr.locust.stats import SnapshotBuilder

        builder = SnapshotBuilder(
            run.id, started_at=sent_at, tenant_id=run.tenantId, env_id=run.envId, seq=1
        )
        return StatsSource(client, builder, settings.interval, saturation_level(run))
    first = PluginSource.first_batch(client)
    # The master's own clock says when the test began; the seconds are on that clock too.
    origin = int(first.test_started if first.test_started is not None else sent_at.timestamp())
    since_swarm = (utcnow() - sent_at).total_seconds()
    if first.test_started is not None and not (
        -START_SLACK_SEC <= first.now - first.test_started <= since_swarm + START_SLACK_SEC
    ):
        raise InvalidPayload(
            f"the plugin says the test started {first.now - first.test_started:,.0f} s before "
            f"its own clock's now, for a test swarmed {since_swarm:.0f} s ago"
        )
    started = None if first.test_started is None else origin
    clock = RunClock(origin, started, started_wall=sent_at.timestamp())
    return PluginSource(client, _windows(run, clock, settings), saturation_level(run))


def _windows(
    run: LoadTestRun, clock: RunClock, settings: CollectorSettings, **resume: Any
) -> WindowBuilder:
    return WindowBuilder(
        run.id,
        origin=clock.origin,
        clock=clock,
        interval=settings.interval,
        max_windows=max_windows(run.durationSeconds, settings.interval),
        tenant_id=run.tenantId,
        env_id=run.envId,
        **resume,
    )


def resumed_source(
    store: Store, client: LocustClient, run: LoadTestRun, settings: CollectorSettings
) -> Source:
    """The source that continues right after the last interval stored for `run`.

    With the plugin, the missed seconds are read back from its buffer; without it, the
    next interval covers the time since the last one, marked a gap.
    """
    last = store.metrics.latest(run.id)
    collector = run.collector or {}
    origin = collector.get("origin")
    if run.collectionMode == "plugin" and isinstance(origin, int) and not isinstance(origin, bool):
        state = resume_state(last)
        state["request_totals"] = store.metrics.request_totals(run.id)
        started = collector.get("testStarted")
        clock = RunClock(
            origin,
            started if isinstance(started, int) and not isinstance(started, bool) else None,
            started_wall=_started_here(store, run),
        )
        return PluginSource(
            client, _windows(run, clock, settings, **state), saturation_level(run)
        )
    from loadmgr.locust.stats import SnapshotBuilder

    builder = SnapshotBuilder(
        run.id,
        started_at=utcnow(),
        tenant_id=run.tenantId,
        env_id=run.envId,
        seq=(int(last.get("seq") or 0) if last else 0) + 1,
    )
    since = run.startedAt or run.createdAt
    if last:
        since = moment(last.get("windowEnd") or last.get("timestamp"), since)
    builder.resume(last, since)
    client.stats()  # Locust must answer before the run is taken for ours
    return StatsSource(client, builder, settings.interval, saturation_level(run))


def _started_here(store: Store, run: LoadTestRun) -> float | None:
    """The run's start on this machine's wall clock (from the database server's, so
    another host's clock that started it does not matter)."""
    if run.startedAt is None:
        return None
    return time.time() - (store.server_now() - run.startedAt).total_seconds()
