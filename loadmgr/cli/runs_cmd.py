"""`loadmgr runs`: start, stop, list, show, follow."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.context import AppContext, app_context
from loadmgr.cli.output import (
    Column,
    OutputOption,
    QuietOption,
    Renderer,
    ago,
    field,
    jsonable,
    notice,
    sanitize,
)
from loadmgr.errors import ExitCode, ValidationFailed

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.models import LoadTestRun
    from loadmgr.service.collector import RunObserver

app = typer.Typer(
    rich_markup_mode=None,
    help="Run tests on Locust clusters and see every run.",
    no_args_is_help=True,
)

RunRef = Annotated[str, typer.Argument(help="The run's id.", show_default=False)]
DETACH_START_TIMEOUT_SEC = 150.0

LIST_COLUMNS = [
    field("id"),
    field("testName", "TEST"),
    Column(
        "STATUS",
        lambda d: f"{d.get('status')} (stale)" if d.get("stale") else d.get("status"),
    ),
    field("verdict", "VERDICT"),
    field("locustClusterId", "CLUSTER"),
    field("targetUsers", "USERS", "right"),
    Column("REQUESTS", lambda d: (d.get("lastMetrics") or {}).get("totalRequests"), "right"),
    Column("STARTED", lambda d: ago(d.get("startedAt") or d.get("createdAt"))),
    field("createdBy", "BY"),
]

PERCENTILE_NOTE = (
    "Per interval: RPS and failures/s are deltas between polls; p50/p95 are Locust's rolling "
    "~10 s window; p99, min and max are cumulative since the run started."
)


def run_exit_code(run: LoadTestRun, interrupted: bool = False) -> int:
    """DESIGN §2: 0 passed, 1 a threshold failed, 6 the run failed, 130 interrupted."""
    from loadmgr.models import RunStatus, Verdict

    if interrupted:
        return ExitCode.INTERRUPTED
    if run.status == RunStatus.FAILED:
        return ExitCode.CLUSTER
    if run.verdict == Verdict.FAILED:
        return ExitCode.THRESHOLD_FAILED
    return ExitCode.OK


def run_view(data: dict[str, Any]) -> RenderableType:
    """A run for people: its load, its life, its numbers, its verdict."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from loadmgr.cli.live import fmt_ms, fmt_pct
    from loadmgr.cli.output import audit_line, key_value_view

    final = data.get("finalStats") or {}
    totals = final.get("totals") or {}
    last = data.get("lastMetrics") or {}
    status = data.get("status")
    if data.get("stale"):
        status = f"{status} (stale: its collector stopped reporting)"
    summary: dict[str, Any] = {
        "id": data.get("id"),
        "test": f"{data.get('testName') or '?'} ({data.get('loadTestId')})",
        "status": status,
        "verdict": data.get("verdict") or "-",
        "stop reason": data.get("stopReason") or "-",
        "error": data.get("error") or "-",
        "cluster": data.get("locustClusterId"),
        "target": data.get("targetUrl"),
        "load": f"{data.get('targetUsers')} users at {data.get('spawnRate')}/s "
        f"for {data.get('durationSeconds')}s",
        "started": data.get("startedAt") or "-",
        "finished": data.get("finishedAt") or "-",
        "created": audit_line(data, "created"),
    }
    if totals:
        summary.update(
            {
                "requests": f"{totals.get('requests'):,} ({totals.get('failures'):,} failed, "
                f"{fmt_pct(totals.get('errorRate'))})",
                "rps": f"{totals.get('rps') or 0:,.1f}",
                "latency": f"avg {fmt_ms(totals.get('avgResponseMs'))}  "
                f"p50 {fmt_ms(totals.get('p50ResponseMs'))}  "
                f"p95 {fmt_ms(totals.get('p95ResponseMs'))}  "
                f"p99 {fmt_ms(totals.get('p99ResponseMs'))}  "
                f"max {fmt_ms(totals.get('maxResponseMs'))}",
            }
        )
    elif last:
        summary.update(
            {
                "requests": f"{last.get('totalRequests', 0):,} "
                f"({last.get('totalFailures', 0):,} failed) so far",
                "last interval": f"rps {last.get('totalRPS', 0):,.1f}  "
                f"p95 {fmt_ms(last.get('p95ResponseMs'))}  users {last.get('currentUsers')}",
            }
        )
    parts: list[Any] = [key_value_view(summary, title=f"run {data.get('name')}")]
    results = data.get("thresholdResults") or []
    if results:
        table = Table(title="thresholds", box=None, header_style="bold", title_justify="left")
        for header in ("threshold", "actual", "result"):
            table.add_column(header)
        for result in results:
            actual = result.get("actual")
            shown = "-" if actual is None else f"{actual:,.4g}"
            table.add_row(
                Text(sanitize(str(result.get("expression", "")), in_cell=True)),
                shown,
                Text("pass", style="green") if result.get("passed") else Text("FAIL", style="red"),
            )
        parts.append(table)
    return Group(*parts)


def _observer(quiet: bool) -> RunObserver:
    from loadmgr.cli.live import make_observer

    return make_observer(quiet)


def _finish(context: AppContext, renderer: Renderer, run: LoadTestRun, interrupted: bool) -> None:
    renderer.one(run, run_view)
    raise typer.Exit(run_exit_code(run, interrupted))


@app.command("start")
def start(
    ctx: typer.Context,
    test: Annotated[str, typer.Argument(help="The test's id or name.", show_default=False)],
    users: Annotated[
        int | None, typer.Option("--users", help="Users (default: the test's).")
    ] = None,
    spawn_rate: Annotated[
        float | None, typer.Option("--spawn-rate", help="Users started per second.")
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option("--duration", help="How long: 300, 300s, 5m, 1h30m (default: the test's)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name for this run.")] = None,
    cluster: Annotated[
        str | None, typer.Option("--cluster", help="Run on this cluster instead of the test's.")
    ] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="KEY=VALUE metadata (repeatable).")
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="Add a threshold or override the test's for the same metric (repeatable).",
        ),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Return once the load runs; collect in the background."),
    ] = False,
    if_busy: Annotated[
        str, typer.Option("--if-busy", help="When the cluster is in use: fail, wait or skip.")
    ] = "fail",
    wait_timeout: Annotated[
        str, typer.Option("--wait-timeout", help="With --if-busy wait: how long at most.")
    ] = "10m",
    interval: Annotated[
        float,
        typer.Option(
            "--interval", help=f"Seconds between metric polls (at least 2). {PERCENTILE_NOTE}"
        ),
    ] = 5.0,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Local cluster: worker processes (default: one a core; 0: standalone Locust).",
        ),
    ] = None,
    lost_timeout: Annotated[
        str,
        typer.Option("--lost-timeout", help="Fail the run when Locust is silent this long."),
    ] = "30s",
    abort_on_fail: Annotated[
        bool,
        typer.Option("--abort-on-fail", help="Stop as soon as a threshold can no longer pass."),
    ] = False,
    compare_baseline: Annotated[
        bool,
        typer.Option(
            "--compare-baseline",
            help="Compare with the test's baseline run; exit 1 on a regression beyond "
            "--max-regression (default: p95=10%, rps=10%).",
        ),
    ] = False,
    max_regression: Annotated[
        list[str] | None,
        typer.Option(
            "--max-regression",
            help="METRIC=PERCENT a metric may be worse than the baseline, e.g. p95=10% "
            "(repeatable; implies --compare-baseline).",
        ),
    ] = None,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run a test: put the load on, record every interval, print the run when it ends.

    Exit code 0 when it finished and every threshold passed, 1 when a threshold failed,
    6 when the cluster failed, 130 when interrupted (the run is stopped and recorded).
    """
    from loadmgr.models import parse_duration, parse_meta
    from loadmgr.service.compare import parse_max_regressions
    from loadmgr.service.runs import RunOptions

    context = app_context(ctx)
    allowed = parse_max_regressions(max_regression or [])
    renderer = Renderer(output, quiet, context.settings.output)
    try:
        parsed_duration = parse_duration(duration) if duration is not None else None
    except ValueError as exc:
        raise ValidationFailed(f"invalid --duration: {exc}") from None
    try:
        waits = parse_duration(wait_timeout)
        lost = parse_duration(lost_timeout)
        metadata = parse_meta(meta or [])
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    for expression in threshold or []:
        from loadmgr.models import parse_threshold

        try:
            parse_threshold(expression)
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
    options = RunOptions(
        users=users,
        spawn_rate=spawn_rate,
        duration=parsed_duration,
        name=name,
        cluster=cluster,
        metadata=metadata,
        thresholds=list(threshold or []),
        interval=interval,
        if_busy=if_busy.strip().lower(),
        wait_timeout=float(waits),
        lost_timeout=float(max(lost, 1)),
        workers=workers,
        abort_on_fail=abort_on_fail,
    )
    baseline = allowed if (compare_baseline or allowed) else None
    if baseline is not None and detach:
        raise ValidationFailed(
            "--compare-baseline needs the run in the foreground",
            hint="drop --detach, or compare later with 'loadmgr metrics compare'",
        )
    _start(context, renderer, test, options, detach=detach, quiet=quiet, baseline=baseline)


def _start(
    context: AppContext,
    renderer: Renderer,
    test: str,
    options: Any,
    *,
    detach: bool,
    quiet: bool,
    baseline: dict[str, float] | None = None,
) -> None:
    from loadmgr.service.collector import Collector, CollectorSettings
    from loadmgr.service.runs import lease_id, plan_run, record_pending, take_lease

    store = context.store
    settings = context.settings
    plan = plan_run(store, test, options, settings.user)
    if baseline is not None:
        from loadmgr.service.compare import DEFAULT_MAX_REGRESSION, baseline_run

        baseline_run(store, plan.test.id)  # no baseline → exit 2/4 before any load
        baseline = baseline or dict(DEFAULT_MAX_REGRESSION)
        plan.run.metadata.setdefault("compareBaseline", "true")
    if plan.cluster is not None:
        from loadmgr.cli.clusters_cmd import warn_if_unverified

        warn_if_unverified(plan.cluster.baseUrl, plan.cluster.verifyTls)
    collector_settings = CollectorSettings(
        interval=options.interval,
        lost_timeout=options.lost_timeout,
        workers=options.workers,
        abort_on_fail=options.abort_on_fail,
    )
    plan.run.collector = collector_settings.to_document()
    store.ensure_indexes()
    if not take_lease(store, plan, notice):
        notice(f"skipped: cluster {plan.cluster_id!r} is busy (--if-busy skip)")
        raise typer.Exit(ExitCode.OK)
    try:
        run = record_pending(store, plan)
    except BaseException:
        store.leases.release(lease_id(plan.cluster_id), plan.run.id)
        raise
    notice(f"run {run.id} of test {plan.test.name!r} recorded")
    if detach:
        _detach(context, renderer, run.id)
        return
    stop_event = threading.Event()
    from loadmgr.errors import ClusterError
    from loadmgr.service.signals import stop_on_signals

    collector = Collector(
        store,
        run,
        cluster=plan.cluster,
        settings=collector_settings,
        home=settings.home,
        observer=_observer(quiet),
        stop_event=stop_event,
        locustfile=plan.test.locustfileContent,
    )
    with stop_on_signals(stop_event):
        try:
            final = collector.execute()
        except ClusterError:
            if not collector.run.status.is_active:
                renderer.one(collector.run, run_view)  # recorded Failed, with the reason
            raise
    regressed = False
    if baseline is not None and final.status.value == "Finished":
        final, regressed = _check_baseline(context, final, baseline)
    renderer.one(final, run_view)
    code = run_exit_code(final, collector.interrupted)
    raise typer.Exit(ExitCode.THRESHOLD_FAILED if regressed and code == 0 else code)


def _check_baseline(
    context: AppContext, run: LoadTestRun, allowed: dict[str, float]
) -> tuple[LoadTestRun, bool]:
    """Compare a finished run with its test's baseline; store and tell the result."""
    from loadmgr.service.compare import baseline_checks

    checks = baseline_checks(context.store, run, allowed)
    bad = [check for check in checks if check.regressed]
    for check in bad:
        notice(f"regression: {check.describe()}")
    if not bad:
        notice("no regression against the baseline")
    updated = context.store.runs.update(
        run.id, {"baselineChecks": [check.to_document() for check in checks]}
    )
    return updated or run, bool(bad)


def _detach(context: AppContext, renderer: Renderer, run_id: str) -> None:
    """Hand the run to a background collector; return once the load runs (or failed)."""
    from loadmgr.models import RunStatus
    from loadmgr.service.background import spawn_collector
    from loadmgr.service.runs import get_run

    log = spawn_collector(context.settings, run_id)
    notice(f"collecting in the background; log: {log}")
    deadline = time.monotonic() + DETACH_START_TIMEOUT_SEC
    run = get_run(context.store, run_id)
    while run.status == RunStatus.PENDING and time.monotonic() < deadline:
        time.sleep(0.25)
        run = get_run(context.store, run_id)
    if run.status == RunStatus.FAILED:
        renderer.one(run, run_view)
        from loadmgr.errors import ClusterError

        raise ClusterError(f"run {run.id} failed to start: {run.error}", hint=f"see {log}")
    renderer.one(run, run_view)


@app.command("collect", hidden=True)
def collect(ctx: typer.Context, run_id: RunRef) -> None:
    """Collect a detached run (started by `runs start --detach`)."""
    from loadmgr.service.collector import Collector, CollectorSettings
    from loadmgr.service.runs import get_run
    from loadmgr.service.signals import stop_on_signals

    context = app_context(ctx)
    store = context.store
    run = get_run(store, run_id)
    from loadmgr.models import LOCAL_CLUSTER_ID
    from loadmgr.service.load_tests import get_test

    test = get_test(store, run.loadTestId)
    cluster = None
    if run.locustClusterId != LOCAL_CLUSTER_ID:
        from loadmgr.service.clusters import get_cluster

        cluster = get_cluster(store, run.locustClusterId)
    stop_event = threading.Event()
    from loadmgr.cli.live import PlainObserver

    collector = Collector(
        store,
        run,
        cluster=cluster,
        settings=CollectorSettings.from_run(run),
        home=context.settings.home,
        observer=PlainObserver(),
        stop_event=stop_event,
        locustfile=test.locustfileContent,
    )
    with stop_on_signals(stop_event):
        final = collector.execute()
    raise typer.Exit(run_exit_code(final, collector.interrupted))


@app.command("follow")
def follow(
    ctx: typer.Context,
    run_id: RunRef,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Watch a run live; take over collecting if its collector died. Exits like `start`."""
    from loadmgr.service.runs import get_run, is_stale

    context = app_context(ctx)
    renderer = Renderer(output, quiet, context.settings.output)
    store = context.store
    run = get_run(store, run_id)
    if not run.status.is_active:
        notice(f"run {run.id} is {run.status.value}")
        _finish(context, renderer, run, False)
    if is_stale(run):
        _take_over(context, renderer, run, quiet)
    else:
        _watch(context, renderer, run, quiet)


def _take_over(context: AppContext, renderer: Renderer, run: LoadTestRun, quiet: bool) -> None:
    from loadmgr.errors import Conflict
    from loadmgr.models import LOCAL_CLUSTER_ID, utcnow
    from loadmgr.service.collector import Collector, CollectorSettings
    from loadmgr.service.signals import stop_on_signals

    store = context.store
    settings = CollectorSettings.from_run(run)
    claimed = store.runs.claim(
        run.id,
        run.heartbeatAt,
        {"collector": settings.to_document(), "heartbeatAt": utcnow()},
    )
    if claimed is None:
        raise Conflict(f"run {run.id} was taken over by someone else first")
    notice(f"run {run.id}: its collector stopped reporting; taking over")
    cluster = None
    if run.locustClusterId != LOCAL_CLUSTER_ID:
        from loadmgr.service.clusters import get_cluster

        cluster = get_cluster(store, run.locustClusterId)
    stop_event = threading.Event()
    collector = Collector(
        store,
        claimed,
        cluster=cluster,
        settings=settings,
        home=context.settings.home,
        observer=_observer(quiet),
        stop_event=stop_event,
    )
    with stop_on_signals(stop_event):
        final = collector.take_over()
    _finish(context, renderer, final, collector.interrupted)


def _watch(context: AppContext, renderer: Renderer, run: LoadTestRun, quiet: bool) -> None:
    """Show a run another collector records, until it ends (Ctrl-C only stops watching)."""
    from loadmgr.models import MetricSnapshot
    from loadmgr.service.collector import CollectorSettings
    from loadmgr.service.runs import get_run, is_stale

    store = context.store
    observer = _observer(quiet)
    observer.started(run)
    interval = CollectorSettings.from_run(run).interval
    last_seq = -1
    try:
        while run.status.is_active:
            latest = store.metrics.latest(run.id)
            if latest is not None and latest.get("seq", 0) != last_seq:
                snapshot = MetricSnapshot.model_validate(latest)
                last_seq = snapshot.seq
                observer.interval(run, snapshot)
            time.sleep(min(interval, 2.0))
            run = get_run(store, run.id)
            if run.status.is_active and is_stale(run):
                observer.finished(run)
                notice("its collector stopped reporting; taking over")
                _take_over(context, renderer, run, quiet)
                return
    except KeyboardInterrupt:
        observer.message("stopped watching; the run goes on")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    observer.finished(run)
    _finish(context, renderer, run, False)


@app.command("stop")
def stop(
    ctx: typer.Context,
    run_id: RunRef,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Stop a run: the load stops, the run is recorded `Finished` (stopReason user)."""
    from loadmgr.errors import ClusterError
    from loadmgr.models import LOCAL_CLUSTER_ID, RunStatus, StopReason, utcnow
    from loadmgr.service.collector import client_for, finalize_orphan
    from loadmgr.service.runs import get_run, is_stale

    context = app_context(ctx)
    renderer = Renderer(output, quiet, context.settings.output)
    store = context.store
    run = get_run(store, run_id)
    if not run.status.is_active:
        notice(f"run {run.id} is already {run.status.value}")
        renderer.one(run, run_view)
        return
    active = [s.value for s in RunStatus if s.is_active]
    marked = store.runs.update(
        run.id,
        {
            "status": RunStatus.STOPPING.value,
            "stopRequested": True,
            "updatedAt": utcnow(),
            "updatedBy": context.settings.user,
        },
        only_if_status=active,
    )
    run = marked or get_run(store, run.id)
    cluster = None
    if run.locustClusterId != LOCAL_CLUSTER_ID:
        from loadmgr.service.clusters import get_cluster

        cluster = get_cluster(store, run.locustClusterId)
    if run.locustUrl or cluster is not None:
        try:
            with client_for(cluster, run.locustUrl) as client:
                client.stop()
        except ClusterError as exc:
            notice(f"could not reach Locust to stop it: {exc.message}")
    if is_stale(run):
        notice("no live collector: recording the end of the run")
        run = finalize_orphan(store, run, cluster, context.settings.home, StopReason.USER)
    else:
        deadline = time.monotonic() + 150
        while run.status.is_active and time.monotonic() < deadline:
            time.sleep(0.5)
            run = get_run(store, run.id)
            if run.status.is_active and is_stale(run):
                run = finalize_orphan(store, run, cluster, context.settings.home, StopReason.USER)
    renderer.one(run, run_view)
    if run.status.is_active:
        from loadmgr.errors import Conflict

        raise Conflict(f"run {run.id} is still {run.status.value}; its collector has not ended it")


@app.command("list")
def list_(
    ctx: typer.Context,
    test: Annotated[str | None, typer.Option("--test", help="Only runs of this test.")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only with this status (repeatable)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only created since: 2h, 7d, or an ISO date."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many; 0 for all.")] = 50,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """List runs, newest first; a run whose collector died is shown as stale."""
    from loadmgr.service.runs import list_runs, since_cutoff

    context = app_context(ctx)
    renderer = Renderer(output, quiet, context.settings.output)
    cutoff = since_cutoff(since) if since else None
    runs = list_runs(context.store, test_ref=test, statuses=status, since=cutoff, limit=limit)
    renderer.many(runs, LIST_COLUMNS, empty="no runs found")


@app.command("show")
def show(
    ctx: typer.Context, run_id: RunRef, output: OutputOption = None, quiet: QuietOption = False
) -> None:
    """Show one run, with a summary of its metrics and thresholds."""
    from loadmgr.service.runs import get_run, is_stale

    context = app_context(ctx)
    renderer = Renderer(output, quiet, context.settings.output)
    run = get_run(context.store, run_id)
    data = jsonable(run)
    if renderer.is_table:
        data["stale"] = is_stale(run)
    renderer.one(run if not renderer.is_table else data, run_view)
