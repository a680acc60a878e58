"""`loadmgr runs start`: put a test's load on and record the run, in the foreground or
detached (then the hidden `runs collect` records it in the background)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.choices import choices
from loadmgr.cli.completion import RunRef, TestRef
from loadmgr.cli.context import app_context
from loadmgr.cli.inputs import given
from loadmgr.cli.options import ClusterOpt, MetaOpt, SpawnRateOpt, UsersOpt, WorkersOpt
from loadmgr.cli.output import OutputOption, QuietOption, notice
from loadmgr.cli.runs.views import PERCENTILE_NOTE, RUN_CSV, run_exit_code, run_view
from loadmgr.errors import ExitCode

if TYPE_CHECKING:
    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer

app = typer.Typer(rich_markup_mode=None)  # its commands join `loadmgr.cli.runs.app`


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
    meta: MetaOpt = None,
    thresholds: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="Add a threshold or override the test's for the same metric (repeatable).",
        ),
    ] = None,
    server_metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--server-metric",
            metavar="NAME[:UNIT]=PROMQL",
            help="Also read this server-side metric for every interval, from --source "
            "(repeatable; over the test's of the same name).",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="The source (loadmgr sources) --server-metric reads from."),
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
            help="Local cluster: run this locustfile (a file, a folder or a.py,b.py) once "
            "instead of the test's stored copy (the run records it and its sha256; the "
            "test is not changed).",
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
    locust_options: Annotated[
        list[str] | None,
        typer.Option(
            "--locust-option",
            metavar="KEY=VALUE",
            help="One of Locust's own options for this run, over the test's (e.g. "
            "tags=checkout; repeatable; those loadmgr sets are refused).",
            show_default=False,
        ),
    ] = None,
    locust_config: Annotated[
        str | None,
        typer.Option(
            "--locust-config",
            metavar="PATH",
            help="Local cluster: a Locust config file to read (by default none is: "
            "~/.locust.conf and ./locust.conf are ignored).",
        ),
    ] = None,
    check_trend: Annotated[
        bool,
        typer.Option(
            "--check-trend",
            help="Judge the run against the test's recent runs (tests trend): when it is in a "
            "regime a regression started, the run fails (exit 1). Needs loadmgr[trend].",
        ),
    ] = False,
    steps: Annotated[
        str | None,
        typer.Option(
            "--steps",
            metavar="USERS,USERS,...",
            help="Stepped load in one run: these users, one step after another (e.g. "
            "10,20,40,80), each step its own window (tests capacity). Needs the plugin.",
        ),
    ] = None,
    step_duration: Annotated[
        str | None,
        typer.Option("--step-duration", help="With --steps: how long each step lasts (60s)."),
    ] = None,
    step_settle: Annotated[
        str | None,
        typer.Option(
            "--step-settle",
            help="With --steps: left out of each step's numbers at its start "
            "(default: 10% of a step).",
        ),
    ] = None,
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
    from loadmgr.service.runs.options import (
        check_interval,
        optional_duration,
        parse_overrides,
        parse_steps_option,
    )
    from loadmgr.service.server_metrics.definitions import parse_server_metrics
    from loadmgr.service.validation import duration_option

    context = app_context(ctx)
    allowed = parse_max_regressions(max_regression or [])
    renderer = context.renderer(output, quiet)
    overrides = given(parse_overrides, locals())
    warmup_sec = duration_option("--warmup", warmup) if warmup is not None else None
    waits = duration_option("--wait-timeout", wait_timeout)
    lost = duration_option("--lost-timeout", lost_timeout)
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
        locust_config=_absolute(locust_config),
        server_metrics=parse_server_metrics(server_metrics, source),
        steps=parse_steps_option(steps),
        step_duration=optional_duration("--step-duration", step_duration),
        step_settle=optional_duration("--step-settle", step_settle),
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


def _absolute(path: str | None) -> str | None:
    """A path as an absolute one: a detached collector runs from another directory."""
    import os

    return os.path.abspath(os.path.expanduser(path)) if path else None


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
    from loadmgr.cli.runs.live import make_observer
    from loadmgr.service.lifecycle.start import StartFailed, start_run

    try:
        outcome = start_run(
            context.store,
            context.settings,
            test,
            options,
            observer=make_observer(quiet, context.store.server_now),
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
    from loadmgr.service.lifecycle.control import collect_run
    from loadmgr.service.runs.lookup import get_run

    context = app_context(ctx)
    store = context.store
    observer = PlainObserver(store.server_now)
    run = get_run(store, run_id)
    collected = collect_run(store, run, home=context.settings.home, observer=observer)
    raise typer.Exit(run_exit_code(collected.run, collected.interrupted))
