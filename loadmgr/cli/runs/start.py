"""`loadmgr runs start`: put a test's load on and record the run, in the foreground or
detached (then the hidden `runs collect` records it in the background)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadmgr.cli.choices import choices
from loadmgr.cli.completion import RunRef, TestRef
from loadmgr.cli.context import app_context
from loadmgr.cli.inputs import given
from loadmgr.cli.options import (
    ClusterOpt,
    MetaOpt,
    SaturationCpuOpt,
    SpawnRateOpt,
    StepDurationOpt,
    StepSettleOpt,
    StepsOpt,
    UsersOpt,
    WorkersOpt,
)
from loadmgr.cli.output import OutputOption, QuietOption, notice
from loadmgr.cli.runs.views import PERCENTILE_NOTE, RUN_CSV, run_exit_code, run_view
from loadmgr.errors import ExitCode, ValidationFailed

if TYPE_CHECKING:
    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer
    from loadmgr.models import LoadTestRun

# GitHub Actions' job summary: Markdown appended here shows on the run's page.
STEP_SUMMARY_VAR = "GITHUB_STEP_SUMMARY"

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
    saturation_cpu: SaturationCpuOpt = None,
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
    floor: Annotated[
        list[str] | None,
        typer.Option(
            "--floor",
            help="METRIC=VALUE: the smallest change the baseline check counts, e.g. "
            "p95=2ms or rps=2% (default: the test's, else 1ms and 1% of the baseline's "
            "rps; repeatable).",
            show_default=False,
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
    against_branch: Annotated[
        str | None,
        typer.Option(
            "--against-branch",
            metavar="BRANCH",
            help="With --check-trend: judge the run against this branch's current regime "
            "(its runs' ci.branch), e.g. a pull request's run against main (implies "
            "--check-trend).",
        ),
    ] = None,
    commit: Annotated[
        str | None,
        typer.Option(
            "--commit", help="The commit the run measures (default: from the CI, else git)."
        ),
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option(
            "--branch", help="The branch the run measures (default: from the CI, else git)."
        ),
    ] = None,
    build_url: Annotated[
        str | None,
        typer.Option("--build-url", help="The CI build that started it (default: from the CI)."),
    ] = None,
    summary: Annotated[
        str | None,
        typer.Option(
            "--summary",
            metavar="FILE",
            help="Write a Markdown summary of the run here when it ends (also appended to "
            "$GITHUB_STEP_SUMMARY when that is set).",
        ),
    ] = None,
    steps: StepsOpt = None,
    step_duration: StepDurationOpt = None,
    step_settle: StepSettleOpt = None,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run a test: put the load on, record every interval, print the run when it ends.

    The exit code follows the run's verdict: 0 passed (or nothing to check), 1 failed (a
    threshold, a baseline or trend regression, or no successful request), 8 inconclusive (a
    check failed while the load generator was saturated or lost a worker), 7 aborted (stopped
    before its duration from elsewhere: runs stop, Locust stopped outside loadmgr), 6 error
    (the cluster failed or was lost; 3 when MongoDB failed), 8 inconclusive (a change
    beyond --max-regression that the runs' intervals do not show to be significant), 130
    interrupted here (the run is stopped and recorded first).
    """
    from loadmgr.service.analysis.compare import REGRESSION_METRICS, parse_max_regressions
    from loadmgr.service.analysis.regressions import floors_document, parse_floors
    from loadmgr.service.runs.ci import check_branch, given_ci
    from loadmgr.service.runs.options import (
        check_interval,
        optional_saturation,
        parse_overrides,
        parse_step_options,
    )
    from loadmgr.service.server_metrics.definitions import parse_server_metrics
    from loadmgr.service.validation import duration_option

    context = app_context(ctx)
    allowed = parse_max_regressions(max_regression or [])
    floors = floors_document(parse_floors(floor or [], REGRESSION_METRICS))
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
        saturation_cpu=optional_saturation(saturation_cpu),
        locustfile=locustfile,
        strict_locustfile=strict_locustfile,
        locust_config=_absolute(locust_config),
        server_metrics=parse_server_metrics(server_metrics, source),
        ci=given_ci(commit, branch, build_url),
    )
    step_users, step_sec, settle = parse_step_options(steps, step_duration, step_settle)
    options = replace(options, steps=step_users, step_duration=step_sec, step_settle=settle)
    summary_path = _summary_target(summary, detach)
    baseline = allowed if (compare_baseline or allowed or floors) else None
    trend: dict[str, Any] | None = None
    if check_trend or against_branch is not None:
        from loadmgr.service.analysis.trends import TrendOptions

        against = check_branch("--against-branch", against_branch) if against_branch else None
        trend = TrendOptions(branch=against).to_document()
    _start(
        context,
        renderer,
        test,
        options,
        detach=detach,
        quiet=quiet,
        baseline=baseline,
        trend=trend,
        floors=floors,
        summary=summary_path,
    )


def _summary_target(summary: str | None, detach: bool) -> Path | None:
    """`--summary FILE`, checked before any load: a detached run has no end to sum up
    here, and a path that is no file (a directory, /dev/null) is refused now, not after."""
    if summary is None:
        return None
    if detach:
        raise ValidationFailed("--summary needs the run's end: it cannot go with --detach")
    from loadmgr.local_files import check_writable_file

    return check_writable_file(Path(summary).expanduser())


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
    floors: dict[str, Any] | None = None,
    summary: Path | None = None,
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
            floors=floors,
        )
    except StartFailed as failed:
        renderer.one(failed.run, run_view, csv_columns=RUN_CSV)  # recorded Failed, with the reason
        _summarise(context, failed.run, summary, detach)
        raise
    if outcome.run is None:  # --if-busy skip
        raise typer.Exit(ExitCode.OK)
    renderer.one(outcome.run, run_view, csv_columns=RUN_CSV)
    _summarise(context, outcome.run, summary, detach)
    if detach:
        return
    raise typer.Exit(run_exit_code(outcome.run, outcome.interrupted))


def _summarise(context: AppContext, run: LoadTestRun, path: Path | None, detach: bool) -> None:
    """The run's Markdown summary to `--summary FILE` and, unasked, appended to GitHub's
    job summary when $GITHUB_STEP_SUMMARY names one. A summary that cannot be written is
    a warning: the run's exit code stays the verdict's."""
    import os

    step_summary = os.environ.get(STEP_SUMMARY_VAR, "").strip()
    if detach or (path is None and not step_summary):
        return
    from loadmgr.errors import LoadmgrError
    from loadmgr.local_files import append_to_file, write_file_atomically
    from loadmgr.service.reports.markdown import run_summary

    try:
        text = run_summary(context.store, run.id).encode("utf-8")
        if path is not None:
            write_file_atomically(path, text)
            notice(f"wrote {path}")
        if step_summary:
            append_to_file(Path(step_summary), text)
    except LoadmgrError as exc:
        notice(f"warning: the run's summary was not written: {exc.message}")


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
