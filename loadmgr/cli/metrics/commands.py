"""`loadmgr metrics`: show, export, compare, report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loadmgr.cli.charts import chart_width
from loadmgr.cli.choices import choices
from loadmgr.cli.completion import RunRef, complete_run
from loadmgr.cli.context import app_context
from loadmgr.cli.groups import new_group
from loadmgr.cli.options import FloorOpt, MaxRegressionOpt
from loadmgr.cli.output import OutputOption, QuietOption, Renderer, notice
from loadmgr.errors import ExitCode, ValidationFailed

if TYPE_CHECKING:
    from loadmgr.models import LoadTestRun, RunStatus
    from loadmgr.store import Store

app = new_group("metrics")

# The views and export formats, as text: this module stays light to import (a unit test
# checks they match loadmgr.service.analysis.views and loadmgr.cli.streaming).
VIEWS = ("summary", "timeseries", "requests", "errors", "scatter", "server")
EXPORT_FORMATS = ("json", "jsonl", "csv")
REPORT_FORMATS = ("markdown",)

# On a terminal a long run is shown as this many rows (and chart columns) unless --points
# says otherwise; the data formats give every interval unless asked.
TABLE_POINTS = 60
# `metrics compare` names at most this many regressions on stderr (the rest are counted).
SUMMARY_NAMES = 8


def _renderer(ctx: typer.Context, output: str | None, quiet: bool) -> Renderer:
    return app_context(ctx).renderer(output, quiet)


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: RunRef,
    view: Annotated[
        str,
        typer.Option(
            "--view",
            help="timeseries: RPS, p95, error rate, users; scatter: each interval's p95 per "
            "request against time (-o json/jsonl/csv: the points); server: each server "
            "metric per interval, read from Prometheus.",
            **choices(VIEWS),
        ),
    ] = "summary",
    points: Annotated[
        int | None,
        typer.Option(
            "--points",
            help="timeseries (server: its table): at most this many rows, intervals merged "
            f"(default: all; {TABLE_POINTS} in a table).",
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="summary, requests: only from this offset into the run (30s, 2m).",
            show_default=False,
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to", help="summary, requests: only up to this offset into the run.",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Show what a run measured: its summary, its intervals, per request, its errors, or
    each interval's latency per request as a scatter.

    With the loadmgr plugin every interval is an exact window of whole seconds, and
    --from/--to give exact percentiles over any part of the run (whole intervals inside
    it). Without it, RPS is a delta between changes of Locust's counters and p50/p95 are
    Locust's rolling ~10 s window. Merged points keep the true RPS, the worst p95 and the
    most users of their intervals.
    """
    from loadmgr.service.analysis import views as metrics

    chosen = metrics.check_view(view)
    metrics.check_points(points)
    window = metrics.parse_window(start, end)
    if not window.whole and chosen not in ("summary", "requests"):
        raise ValidationFailed("--from/--to go with --view summary or requests")
    renderer = _renderer(ctx, output, quiet)
    store = app_context(ctx).store
    run = metrics.find_run(store, run_id)
    if chosen == "summary":
        from loadmgr.cli.metrics.views import SUMMARY_CSV, summary_view

        renderer.one(
            metrics.summary(store, run, window),
            summary_view,
            id_key="runId",
            csv_columns=SUMMARY_CSV,
        )
    elif chosen == "timeseries":
        _show_timeseries(store, renderer, run, points)
    elif chosen == "scatter":
        _show_scatter(store, renderer, run)
    elif chosen == "server":
        _show_server(store, renderer, run, points)
    elif chosen == "requests":
        from loadmgr.cli.metrics.views import REQUEST_COLUMNS, REQUEST_CSV

        rows = metrics.request_rows(store, run, window)
        renderer.many(
            rows,
            REQUEST_COLUMNS,
            id_key="name",
            empty=_nothing("requests", run),
            csv_columns=REQUEST_CSV,
        )
    else:
        from loadmgr.cli.metrics.views import ERROR_COLUMNS, ERROR_CSV

        rows = metrics.error_rows(run)
        empty = (
            "no failures recorded" if run.finalStats else "failures are listed once the run ends"
        )
        renderer.many(rows, ERROR_COLUMNS, id_key="error", empty=empty, csv_columns=ERROR_CSV)


def _show_scatter(store: Store, renderer: Renderer, run: LoadTestRun) -> None:
    from loadmgr.service.analysis import latency as latency_views

    points = latency_views.scatter_points(store, run)
    if not renderer.is_table:
        from loadmgr.cli.streaming import write_rows

        quiet_key = "seq" if renderer.quiet else None
        write_rows(renderer.format, points, latency_views.SCATTER_FIELDS, quiet_key=quiet_key)
        return
    from loadmgr.cli.metrics.views import scatter_view
    from loadmgr.cli.output import stdout_console

    end = latency_views.run_length(run) or 0.0
    width = chart_width()
    # Two dots a character: at most one point per request and dot column is ever kept.
    grouped = latency_views.by_request(points, end=end, columns=width * 2)
    if not any(grouped.values()):
        notice(_nothing("intervals with requests", run))
        return
    stdout_console().print(scatter_view(grouped, width, end=end, thresholds=run.thresholds))


def _show_server(store: Store, renderer: Renderer, run: LoadTestRun, points: int | None) -> None:
    from loadmgr.service.server_metrics.readings import SERVER_FIELDS, server_rows

    rows = server_rows(store, run)
    if not renderer.is_table:
        from loadmgr.cli.streaming import write_rows

        quiet_key = "seq" if renderer.quiet else None
        write_rows(renderer.format, rows, SERVER_FIELDS, quiet_key=quiet_key)
        return
    if not run.serverMetrics and not rows:
        notice(f"run {run.id} reads no server metrics (tests create/update --server-metric)")
        return
    if not rows:
        notice(_nothing("intervals", run))
        return
    from loadmgr.cli.metrics.server import server_view
    from loadmgr.cli.output import stdout_console
    from loadmgr.service.analysis.latency import run_length

    view = server_view(
        rows, chart_width(), end=run_length(run), thresholds=run.thresholds,
        points=points or TABLE_POINTS,
    )
    stdout_console().print(view)


def _show_timeseries(
    store: Store, renderer: Renderer, run: LoadTestRun, points: int | None
) -> None:
    from loadmgr.service.analysis import views as metrics

    run_id = run.id
    if not renderer.is_table:
        from loadmgr.cli.streaming import write_rows

        series = metrics.timeseries(store, run_id, points)
        write_rows(
            renderer.format,
            series.rows,
            series.fields,
            quiet_key="seq" if renderer.quiet else None,
        )
        return
    from rich.console import Group

    from loadmgr.cli.metrics.views import MERGED_COLUMN, TIMESERIES_COLUMNS, timeseries_charts
    from loadmgr.cli.output import stdout_console

    series = metrics.timeseries(store, run_id, points or TABLE_POINTS)
    rows = list(series.rows)
    if not rows:
        notice(_nothing("intervals", run))
        return
    if series.step > 1:
        notice(
            f"{series.last_seq} intervals shown as {len(rows)} rows of up to {series.step} "
            "(--points to change)"
        )
    from loadmgr.service.analysis.latency import run_length, run_start

    charts = timeseries_charts(
        rows,
        chart_width(),
        start=run_start(run, rows[0].get("timestamp")),
        end=run_length(run),
        thresholds=run.thresholds,
    )
    stdout_console().print(Group(charts))
    columns = [*TIMESERIES_COLUMNS, MERGED_COLUMN] if series.step > 1 else TIMESERIES_COLUMNS
    renderer.many(rows, columns, id_key="seq")


@app.command("export")
def export(
    ctx: typer.Context,
    run_id: RunRef,
    requests: Annotated[
        bool, typer.Option("--requests", help="One row per interval and request.")
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            envvar="LOADMGR_OUTPUT",
            help="Format (default: csv) [env: LOADMGR_OUTPUT].",
            show_default=False,
            show_envvar=False,
            **choices(EXPORT_FORMATS),
        ),
    ] = None,
) -> None:
    """Every interval of a run, flattened, as csv (default), json or jsonl, streamed."""
    from loadmgr.cli.streaming import DATA_FORMATS, write_rows
    from loadmgr.service.analysis import views as metrics

    fmt = (output or "").strip().lower()
    if not fmt:
        configured = app_context(ctx).settings.output
        fmt = configured if configured in DATA_FORMATS else "csv"
    if fmt not in DATA_FORMATS:
        raise ValidationFailed(
            f"invalid --output {output!r} for export (one of {', '.join(DATA_FORMATS)})"
        )
    store = app_context(ctx).store
    run = metrics.find_run(store, run_id)
    if requests:
        count = write_rows(
            fmt, metrics.export_request_intervals(store, run.id), metrics.REQUEST_EXPORT_FIELDS
        )
    else:
        count = write_rows(fmt, metrics.export_intervals(store, run.id), metrics.EXPORT_FIELDS)
    if count == 0:
        notice(f"run {run.id}: {_nothing('intervals', run)}")


@app.command("compare")
def compare(
    ctx: typer.Context,
    runs: Annotated[
        list[str],
        typer.Argument(
            help="Two or more run ids (or unique prefixes); the first is the reference.",
            autocompletion=complete_run,
        ),
    ],
    tolerance: Annotated[
        str,
        typer.Option("--tolerance", help="Changes worse than this are marked (any metric)."),
    ] = "5%",
    max_regression: MaxRegressionOpt = None,
    floor: FloorOpt = None,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="Exit 1 on a regression, 8 if unsure.")
    ] = False,
    include_max: Annotated[
        bool,
        typer.Option(
            "--include-max",
            help="Count a worse max latency as a regression too (one outlier moves it: by "
            "default it is shown, not counted).",
        ),
    ] = False,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Runs side by side, per metric and per request, with each change against the first.

    Higher latency or error rate and lower RPS beyond the allowance, significantly (over
    the steady intervals) and beyond the --floor, are regressions (max only with
    --include-max); not significant, "not significant". Changes are computed on the stored
    values. A warning says when the runs had different load or belong to different tests.
    """
    from loadmgr.service.analysis.compare import compare_runs, parse_max_regressions
    from loadmgr.service.analysis.regressions import parse_floors

    if len(runs) < 2:
        raise ValidationFailed("give at least two runs to compare", hint="metrics compare A B")
    allowed, floors = parse_max_regressions(list(max_regression or [])), parse_floors(floor or [])
    allowance = _percent(tolerance, "--tolerance")
    renderer = _renderer(ctx, output, quiet)
    store = app_context(ctx).store
    comparison = compare_runs(
        store, runs, tolerance=allowance, max_regression=allowed, include_max=include_max,
        floors=floors,
    )
    if comparison.different_tests:
        notice("note: these runs belong to different tests; their numbers may not be comparable")
    if comparison.different_load:
        notice(
            "warning: the runs had different load, so their numbers may differ for that: "
            + "; ".join(comparison.different_load)
        )
    for run_id in comparison.without_final:
        status = next((run.status for run in comparison.runs if run.id == run_id), None)
        notice(f"note: run {run_id} has no final stats ({_unfinished(status)}); its values are "
               "empty")
    if renderer.quiet:
        # Ids of the runs compared, once each (rows repeat them per metric).
        renderer.many([{"id": run.id} for run in comparison.runs], [])
    elif renderer.is_table:
        from loadmgr.cli.metrics.views import compare_view
        from loadmgr.cli.output import stdout_console

        stdout_console().print(compare_view(comparison))
    else:
        from loadmgr.cli.metrics.views import COMPARE_CSV

        renderer.many(comparison.rows, [], id_key="runId", csv_columns=COMPARE_CSV)
    names, doubts = comparison.regressions, comparison.inconclusive
    for found, what in ((names, "regression(s)"), (doubts, "change(s) not significant")):
        if found:
            shown = ", ".join(found[:SUMMARY_NAMES])
            more = f" and {len(found) - SUMMARY_NAMES} more" if len(found) > SUMMARY_NAMES else ""
            notice(f"{len(found)} {what}: {shown}{more}")
    if fail_on_regression and (names or doubts):
        raise typer.Exit(ExitCode.THRESHOLD_FAILED if names else ExitCode.INCONCLUSIVE)


def _percent(text: str, option: str) -> float:
    cleaned = text.strip().rstrip("%").strip()
    try:
        value = float(cleaned) / 100.0
    except ValueError:
        raise ValidationFailed(f"invalid {option} {text!r}: a percentage such as 5%") from None
    if not 0 <= value < float("inf"):
        raise ValidationFailed(f"invalid {option} {text!r}: must be 0% or more")
    return value


@app.command("report")
def report(
    ctx: typer.Context,
    run_id: RunRef,
    html: Annotated[
        str | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    junit: Annotated[
        str | None,
        typer.Option("--junit", help="Write the thresholds as JUnit XML here ('-': stdout)."),
    ] = None,
    max_regression: MaxRegressionOpt = None,
    report_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="markdown: print the run's summary for CI (a job summary) on stdout.",
            **choices(REPORT_FORMATS),
        ),
    ] = None,
) -> None:
    """Reports of a run for people (HTML, with charts) and for CI (JUnit XML, Markdown).

    Both show the run's stored verdict and its reasons. The comparison with the baseline
    is judged with the limits the run was started with (`runs start --max-regression`),
    or with this command's --max-regression when given; the HTML shows the other metrics
    too, unjudged. JUnit: a failed threshold or regression is a failure, an aborted run
    a failure, a run that could not complete an error.
    """
    from loadmgr.service.analysis.compare import parse_max_regressions
    from loadmgr.service.reports import junit as junit_report
    from loadmgr.service.reports import run_html as reports
    from loadmgr.service.reports.markdown import markdown_format, render_markdown

    markdown = report_format is not None and markdown_format(report_format)
    if not html and not junit and not markdown:
        raise ValidationFailed("nothing to write: give --html FILE, --junit FILE or --format")
    allowed = parse_max_regressions(list(max_regression or []))
    store = app_context(ctx).store
    data = reports.gather(store, run_id, max_regression=allowed)
    if html:
        _write(html, reports.render_html(data).encode("utf-8"))
    if junit:
        _write(junit, junit_report.junit_xml(data))
    if markdown:
        _write("-", render_markdown(data).encode("utf-8"))


def _write(target: str, content: bytes) -> None:
    if target == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    from loadmgr.local_files import write_file_atomically

    path = Path(target).expanduser()
    write_file_atomically(path, content)
    notice(f"wrote {path}")


def _nothing(what: str, run: LoadTestRun) -> str:
    """`no intervals recorded yet` while the run goes on; once it ended, that it never will
    have them (`… (it ended Failed without them)`)."""
    if run.status.is_active:
        return f"no {what} recorded yet"
    return f"no {what} recorded ({_unfinished(run.status)})"


def _unfinished(status: RunStatus | None) -> str:
    """Why a run has no numbers: `not finished yet` while it runs, `it ended Failed` once
    it ended without them (a Failed run will never finish)."""
    from loadmgr.models import RunStatus

    if status is None or RunStatus(status).is_active:
        return "not finished yet"
    return f"it ended {RunStatus(status).value} without them"
