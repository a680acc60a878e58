"""`loadmgr tests` baseline and trend: a test's runs over time."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from loadmgr.cli.choices import choices
from loadmgr.cli.completion import TestRef, complete_run
from loadmgr.cli.context import renders
from loadmgr.cli.output import notice
from loadmgr.cli.tests.define import TEST_CSV, test_view
from loadmgr.errors import ExitCode, ValidationFailed
from loadmgr.models.stats.catalog import TRENDED

if TYPE_CHECKING:
    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer
    from loadmgr.service.analysis.trends import Trend

app = typer.Typer(rich_markup_mode=None)  # its commands join `loadmgr.cli.tests.app`

# `--metric`: the catalog's trended metrics (the catalog imports no service).
TREND_METRICS = TRENDED


@app.command("baseline")
@renders
def baseline(
    context: AppContext,
    renderer: Renderer,
    test: TestRef,
    run: Annotated[
        str | None,
        typer.Argument(
            help="The finished run to compare later runs with (its id or a unique prefix).",
            show_default=False,
            autocompletion=complete_run,
        ),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the baseline.")] = False,
    floor: Annotated[
        list[str] | None,
        typer.Option(
            "--floor",
            help="METRIC=VALUE: the smallest change its baseline checks count as a "
            "regression, e.g. p95=2ms or rps=2% (stored on the test; repeatable).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Mark a finished run as the test's baseline (`runs start --compare-baseline`), and
    set the floors of its baseline checks (--floor, with or without a RUN)."""
    from loadmgr.service.analysis.compare import REGRESSION_METRICS, update_baseline
    from loadmgr.service.analysis.regressions import parse_floors

    floors = parse_floors(list(floor or []), REGRESSION_METRICS)
    if (clear and run is not None) or not (clear or run is not None or floors):
        raise ValidationFailed(
            "give a RUN to set the baseline, --clear to remove it, or --floor to set floors"
        )
    updated = update_baseline(
        context.store, test, context.settings.user, run_id=run, clear=clear, floors=floors
    )
    renderer.one(updated, test_view, csv_columns=TEST_CSV)


@app.command("trend")
@renders
def trend(
    context: AppContext,
    renderer: Renderer,
    test: TestRef,
    last: Annotated[
        int, typer.Option("--last", help="The newest N finished runs (1 to 100000).")
    ] = 30,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only runs created since: 30d, 12h, or an ISO date."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help="A metric to show (repeatable) [default: p95, rps, error_rate].",
            show_default=False,
            **choices(TREND_METRICS),
        ),
    ] = None,
    request: Annotated[
        str | None,
        typer.Option("--request", help="One request's numbers, e.g. 'GET /api/items'."),
    ] = None,
    sensitivity: Annotated[
        str,
        typer.Option(
            "--sensitivity",
            help="low, medium, high, or a number (medium is 1; higher finds smaller shifts).",
        ),
    ] = "medium",
    p_value: Annotated[
        str,
        typer.Option("--p-value", help="A change point's Welch t-test must be below this."),
    ] = "0.01",
    min_change: Annotated[
        str,
        typer.Option(
            "--min-change", help="Smallest change kept, relative to the regime before it."
        ),
    ] = "5%",
    branch: Annotated[
        str | None,
        typer.Option("--branch", help="Only runs that measured this branch (their CI context)."),
    ] = None,
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression",
            help="Exit 1 when the newest run is in a regime that a regression started.",
        ),
    ] = False,
    html: Annotated[
        str | None,
        typer.Option(
            "--html",
            help="Also write the trend as a self-contained HTML page here ('-': stdout only).",
        ),
    ] = None,
    ack: Annotated[
        str | None,
        typer.Option(
            "--ack",
            help="Record that the regime starting at this run is expected (with --reason): "
            "the gate then judges the runs from it on.",
            autocompletion=complete_run,
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why the acknowledged change is expected.")
    ] = None,
    unack: Annotated[
        str | None,
        typer.Option("--unack", help="Remove the acknowledged change at this run."),
    ] = None,
    acks: Annotated[
        bool, typer.Option("--acks", help="List the test's acknowledged changes.")
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Break each change point down by request and latency band, and say whether "
            "tests sharing its cluster or target host changed the same day (table or json).",
        ),
    ] = False,
) -> None:
    """A test's recent runs per metric, and where each series shifted for good.

    One point per finished run (its numbers after the warm-up when one was set), oldest
    first. Change points are found by ruptures (PELT, mean-shift cost) and kept when the
    regimes on either side differ significantly (--p-value) and by --min-change; runs of
    another load than the newest are shown but not searched. -o json|jsonl|csv: one row
    per run and metric. Needs the optional extra: pip install 'loadmgr[trend]'.
    --ack RUN --reason TEXT, --unack RUN, --acks: the changes the team expects.
    """
    if ack is not None or unack is not None or acks or reason is not None:
        _acks(context, renderer, test, ack, reason, unack, acks)
        return
    if explain and (renderer.format == "csv" or html is not None):
        raise ValidationFailed("--explain prints a table, json or jsonl (not csv, not --html)")
    from loadmgr.cli.tests.trend_views import newest_line
    from loadmgr.service.analysis.trends import trend_of, trend_options
    from loadmgr.service.runs.ci import check_branch
    from loadmgr.service.runs.lookup import since_cutoff

    options = trend_options(
        metrics=metric,
        request=request,
        last=last,
        since=since_cutoff(since) if since is not None else None,
        sensitivity=sensitivity,
        p_value=p_value,
        min_change=min_change,
        branch=check_branch("--branch", branch) if branch is not None else None,
    )
    found = trend_of(context.store, test, options)
    if html:
        from loadmgr.cli.metrics.commands import _write
        from loadmgr.service.reports.trend_html import render_trend_html

        _write(html, render_trend_html(found).encode("utf-8"))
    if found.incomparable:
        notice(
            f"{found.incomparable} of {len(found.runs)} runs had another load than the newest "
            "(users, spawn rate, duration or cluster): shown, but left out of the search"
        )
    if explain:
        _print_explained(context, renderer, found)
    elif html != "-":  # with '-' the page is the output
        _print_trend(renderer, found)
    if fail_on_regression and found.regressions_now():
        if not renderer.is_table:
            notice(newest_line(found))
        raise typer.Exit(ExitCode.THRESHOLD_FAILED)


ACK_CSV = ("runId", "runCreatedAt", "reason", "by", "at")


def _acks(
    context: AppContext,
    renderer: Renderer,
    test: str,
    ack: str | None,
    reason: str | None,
    unack: str | None,
    listed: bool,
) -> None:
    """--ack, --unack or --acks: one of them, alone (exit 2 otherwise, nothing written)."""
    from loadmgr.cli.output import SHORT_ID_LENGTH, Column, field
    from loadmgr.service.analysis import trend_acks

    if reason is not None and ack is None:
        raise ValidationFailed("--reason goes with --ack RUN")
    if sum((ack is not None, unack is not None, listed)) != 1:
        raise ValidationFailed("give one of --ack RUN --reason TEXT, --unack RUN or --acks")
    columns = [
        Column("RUN", lambda d: d.get("runId"), short=SHORT_ID_LENGTH),
        field("runCreatedAt", "RUN CREATED"),
        field("by", "BY"),
        field("at", "AT"),
        field("reason", "REASON"),
    ]
    store, user = context.store, context.settings.user
    if listed:
        found = trend_acks.list_acks(store, test)
        renderer.many(
            found, columns, id_key="runId", empty="no acknowledged change", csv_columns=ACK_CSV
        )
        return
    if ack is not None:
        done = trend_acks.add_ack(store, test, ack, reason, user)
        said = f"acknowledged the change at run {done.run_id}: the gate judges the runs from it on"
    else:
        done = trend_acks.remove_ack(store, test, unack or "", user)
        said = f"removed the acknowledged change at run {done.run_id}"
    renderer.many([done.to_document()], columns, id_key="runId", csv_columns=ACK_CSV)
    notice(said)


def _print_explained(context: AppContext, renderer: Renderer, found: Trend) -> None:
    """--explain: each change point broken down (docs/trends.md, "Change triage")."""
    from loadmgr.service.analysis.triage import explain_trend

    explained = explain_trend(context.store, found)
    if renderer.is_table:
        from loadmgr.cli.output import stdout_console
        from loadmgr.cli.tests.trend_views import explained_view

        stdout_console().print(explained_view(found, explained))
    else:
        renderer.many([e.to_document() for e in explained], [], id_key="runId")


def _print_trend(renderer: Renderer, found: Trend) -> None:
    """The runs' ids (-q), the rows (json, jsonl, csv), or the charts and table."""
    if renderer.quiet:
        renderer.many([{"id": run.id} for run in found.runs], [])
    elif renderer.is_table:
        from loadmgr.cli.output import stdout_console
        from loadmgr.cli.tests.trend_views import trend_view

        console = stdout_console()
        width = min(console.width, 120) if sys.stdout.isatty() else 80
        console.print(trend_view(found, width))
    else:
        from loadmgr.cli.tests.trend_views import TREND_CSV

        renderer.many(found.rows(), [], csv_columns=TREND_CSV)
