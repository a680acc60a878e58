"""`loadmgr runs`: start, stop, list, show, follow."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.choices import choices
from loadmgr.cli.completion import RunRef, TestRef, complete_test
from loadmgr.cli.context import AppContext, app_context, rendering
from loadmgr.cli.groups import group_help
from loadmgr.cli.inputs import given
from loadmgr.cli.options import ClusterOpt, LimitOpt, SpawnRateOpt, UsersOpt, WorkersOpt
from loadmgr.cli.output import OutputOption, QuietOption, Renderer, jsonable, notice
from loadmgr.cli.runs.views import PERCENTILE_NOTE, RUN_CSV, list_columns, run_exit_code, run_view
from loadmgr.errors import ExitCode

if TYPE_CHECKING:
    from loadmgr.cli.runs.live import PlainObserver
    from loadmgr.models import LoadTestRun

app = typer.Typer(rich_markup_mode=None, help=group_help("runs"), no_args_is_help=True)

# RunStatus and the verdict filters, as text: this module stays light to import (a unit
# test checks they match the models).
STATUSES = ("Pending", "Running", "Stopping", "Finished", "Failed", "Stopped")
VERDICTS = ("passed", "failed", "aborted", "error", "none")


def _observer(quiet: bool, context: AppContext) -> PlainObserver:
    from loadmgr.cli.runs.live import make_observer

    return make_observer(quiet, context.store.server_now)


def _finish(renderer: Renderer, run: LoadTestRun, interrupted: bool) -> None:
    """Print the run and exit with its code."""
    renderer.one(run, run_view, csv_columns=RUN_CSV)
    raise typer.Exit(run_exit_code(run, interrupted))


@app.command("start")
def start(
    ctx: typer.Context,
    test: TestRef,
    users: UsersOpt = None,
    spawn_rate: SpawnRateOpt = None,
    duration: Annotated[
        str | None,
        typer.Option("--duration", help="How long: 300, 300s, 5m, 1h30m (default: the test's)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name for this run.")] = None,
    cluster: ClusterOpt = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="KEY=VALUE metadata (repeatable).")
    ] = None,
    thresholds: Annotated[
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
        str,
        typer.Option(
            "--if-busy", help="When the cluster is in use.", **choices(("fail", "wait", "skip"))
        ),
    ] = "fail",
    wait_timeout: Annotated[
        str, typer.Option("--wait-timeout", help="With --if-busy wait: how long at most.")
    ] = "10m",
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            help="Seconds per stored interval, 1 to 60 (whole seconds). With the loadmgr "
            f"plugin each is an exact window; without it, {PERCENTILE_NOTE}",
        ),
    ] = 5,
    workers: WorkersOpt = None,
    lost_timeout: Annotated[
        str,
        typer.Option(
            "--lost-timeout",
            help="Fail the run when Locust is silent (or answers nonsense) this long: 5s to 10m.",
        ),
    ] = "30s",
    abort_on_fail: Annotated[
        bool,
        typer.Option("--abort-on-fail", help="Stop as soon as a threshold can no longer pass."),
    ] = False,
    warmup: Annotated[
        str | None,
        typer.Option(
            "--warmup",
            help="Leave the run's first part out of thresholds (default: the test's; 0s: none).",
        ),
    ] = None,
    compare_baseline: Annotated[
        bool,
        typer.Option(
            "--compare-baseline",
            help="Compare with the test's baseline run; a regression beyond "
            "--max-regression (default: p95=10%, rps=10%) fails the run (exit 1).",
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
    locustfile: Annotated[
        str | None,
        typer.Option(
            "--locustfile",
            metavar="PATH",
            help="Local cluster: run this file once instead of the test's stored copy (the "
            "run records its sha256; the test is not changed).",
        ),
    ] = None,
    strict_locustfile: Annotated[
        bool,
        typer.Option(
            "--strict-locustfile",
            help="Refuse to run (exit 2) when the test's locustfile has changed since the "
            "test stored it, instead of warning.",
        ),
    ] = False,
    check_trend: Annotated[
        bool,
        typer.Option(
            "--check-trend",
            help="Judge the run against the test's recent runs (tests trend): when it is in a "
            "regime a regression started, the run fails (exit 1). Needs loadmgr[trend].",
        ),
    ] = False,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run a test: put the load on, record every interval, print the run when it ends.

    The exit code follows the run's verdict: 0 passed (or nothing to check), 1 failed (a
    threshold, a baseline or trend regression, or no successful request), 7 aborted (stopped
    before its duration from elsewhere: runs stop, Locust stopped outside loadmgr), 6 error
    (the cluster failed or was lost; 3 when MongoDB failed), 130 interrupted here (the run
    is stopped and recorded first).
    """
    from loadmgr.service.analysis.compare import parse_max_regressions
    from loadmgr.service.runs.options import check_interval, check_thresholds, parse_overrides
    from loadmgr.service.validation import duration_option

    context = app_context(ctx)
    allowed = parse_max_regressions(max_regression or [])
    renderer = context.renderer(output, quiet)
    overrides = given(parse_overrides, locals())
    warmup_sec = duration_option("--warmup", warmup) if warmup is not None else None
    waits = duration_option("--wait-timeout", wait_timeout)
    lost = duration_option("--lost-timeout", lost_timeout)
    check_thresholds(thresholds)
    options = replace(
        overrides,
        name=name,
        interval=check_interval(interval),
        if_busy=if_busy.strip().lower(),
        wait_timeout=float(waits),
        lost_timeout=float(lost),
        abort_on_fail=abort_on_fail,
        warmup=warmup_sec,
        locustfile=locustfile,
        strict_locustfile=strict_locustfile,
    )
    baseline = allowed if (compare_baseline or allowed) else None
    trend: dict[str, Any] | None = None
    if check_trend:
        from loadmgr.service.analysis.trends import TrendOptions

        trend = TrendOptions().to_document()
    _start(
        context,
        renderer,
        test,
        options,
        detach=detach,
        quiet=quiet,
        baseline=baseline,
        trend=trend,
    )


def _start(
    context: AppContext,
    renderer: Renderer,
    test: str,
    options: Any,
    *,
    detach: bool,
    quiet: bool,
    baseline: dict[str, float] | None = None,
    trend: dict[str, Any] | None = None,
) -> None:
    """One service call for the run's whole life; print it and exit with its code."""
    from loadmgr.service.lifecycle.start import StartFailed, start_run

    try:
        outcome = start_run(
            context.store,
            context.settings,
            test,
            options,
            observer=_observer(quiet, context),
            notify=notice,
            detach=detach,
            baseline=baseline,
            trend=trend,
        )
    except StartFailed as failed:
        renderer.one(failed.run, run_view, csv_columns=RUN_CSV)  # recorded Failed, with the reason
        raise
    if outcome.run is None:  # --if-busy skip
        raise typer.Exit(ExitCode.OK)
    renderer.one(outcome.run, run_view, csv_columns=RUN_CSV)
    if detach:
        return
    raise typer.Exit(run_exit_code(outcome.run, outcome.interrupted))


@app.command("collect", hidden=True)
def collect(ctx: typer.Context, run_id: RunRef) -> None:
    """Collect a detached run (started by `runs start --detach`)."""
    from loadmgr.cli.runs.live import PlainObserver
    from loadmgr.service.lifecycle.control import collector_for
    from loadmgr.service.lifecycle.signals import stop_on_signals
    from loadmgr.service.runs.lookup import get_run

    context = app_context(ctx)
    stop_event = threading.Event()
    collector = collector_for(
        context.store,
        get_run(context.store, run_id),
        home=context.settings.home,
        observer=PlainObserver(context.store.server_now),
        stop_event=stop_event,
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
    """Watch a run live; take over collecting if its collector died.

    Exits like `start`, with the run's verdict: 0 passed, 1 failed, 7 aborted, 6 error
    (3 when MongoDB failed); 130 when Ctrl-C stops the watching (the run goes on).
    """
    from loadmgr.service.lifecycle.control import follow_run
    from loadmgr.service.runs.lookup import get_run

    context, renderer = rendering(ctx, output, quiet)
    observers: list[PlainObserver] = []

    def observer() -> PlainObserver:
        observers.append(_observer(quiet, context))
        return observers[-1]

    followed = follow_run(
        context.store,
        get_run(context.store, run_id),
        home=context.settings.home,
        observer=observer,
        notify=notice,
    )
    if followed.stopped_watching:
        observers[-1].close()
        notice("stopped watching; the run goes on")
        raise typer.Exit(ExitCode.INTERRUPTED)
    _finish(renderer, followed.run, followed.interrupted)


@app.command("stop")
def stop(
    ctx: typer.Context,
    run_id: RunRef,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Stop a run: the load stops, the run is recorded `Finished` (stopReason user).

    Its verdict is `aborted`; this command exits 0 once it is stopped, while the `runs
    start` or `runs follow` that was following it exits 7.
    """
    from loadmgr.service.lifecycle.control import stop_run
    from loadmgr.service.runs.lookup import get_run

    context, renderer = rendering(ctx, output, quiet)
    run = get_run(context.store, run_id)
    if not run.status.is_active:
        notice(f"run {run.id} is already {run.status.value}")
    else:
        run = stop_run(
            context.store,
            run,
            user=context.settings.user,
            home=context.settings.home,
            notify=notice,
        )
    renderer.one(run, run_view, csv_columns=RUN_CSV)


@app.command("list")
def list_(
    ctx: typer.Context,
    test: Annotated[
        str | None,
        typer.Option("--test", help="Only runs of this test.", autocompletion=complete_test),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only with this status (repeatable).", **choices(STATUSES)),
    ] = None,
    verdict: Annotated[
        list[str] | None,
        typer.Option(
            "--verdict",
            help="Only with this verdict; none: without one (repeatable).",
            **choices(VERDICTS),
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only created since: 2h, 7d, or an ISO date."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", help="Only runs of tests with this tag (repeatable: all must match)."
        ),
    ] = None,
    absolute_time: Annotated[
        bool,
        typer.Option(
            "--absolute-time",
            help="Table: when each run started as an ISO-8601 UTC date, not '3 h ago'.",
        ),
    ] = False,
    limit: LimitOpt = 50,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """List runs, newest first; a run whose collector died is shown as stale."""
    from loadmgr.service.runs.lookup import list_runs, since_cutoff

    context, renderer = rendering(ctx, output, quiet)
    cutoff = since_cutoff(since) if since else None
    runs = list_runs(
        context.store,
        test_ref=test,
        statuses=status,
        verdicts=verdict,
        since=cutoff,
        limit=limit,
        tags=tag,
    )
    columns = list_columns(absolute_time=absolute_time)
    renderer.many(runs, columns, empty="no runs found", csv_columns=RUN_CSV)


@app.command("show")
def show(
    ctx: typer.Context, run_id: RunRef, output: OutputOption = None, quiet: QuietOption = False
) -> None:
    """Show one run, with a summary of its metrics and thresholds."""
    from loadmgr.service.runs.lease import is_stale
    from loadmgr.service.runs.lookup import get_run

    context, renderer = rendering(ctx, output, quiet)
    run = get_run(context.store, run_id)
    data = jsonable(run)
    if renderer.is_table:
        data["stale"] = is_stale(run, context.store.server_now())
    renderer.one(run if not renderer.is_table else data, run_view, csv_columns=RUN_CSV)
