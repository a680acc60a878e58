"""`loadmgr tests capacity`: the Universal Scalability Law fitted to a test's throughput
against its users, and each stepped run's capacity over time."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from loadmgr.cli.completion import TestRef
from loadmgr.cli.context import renders
from loadmgr.cli.output import notice
from loadmgr.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.cli.context import AppContext
    from loadmgr.cli.output import Renderer
    from loadmgr.service.capacity.report import Capacity

app = typer.Typer(rich_markup_mode=None)  # its commands join `loadmgr.cli.tests.app`

CAPACITY_CSV = (
    "users", "rps", "fittedRps", "p95ResponseMs", "runId", "step", "generatorSaturated",
)  # fmt: skip


@app.command("capacity")
@renders
def capacity(
    context: AppContext,
    renderer: Renderer,
    test: TestRef,
    run: Annotated[
        str | None,
        typer.Option("--run", help="Fit this stepped run's steps (default: the newest's)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only runs created since: 30d, 12h, or an ISO date."),
    ] = None,
    last: Annotated[
        int, typer.Option("--last", help="The newest N finished runs read (1 to 100000).")
    ] = 30,
    fail_on_capacity_drop: Annotated[
        str | None,
        typer.Option(
            "--fail-on-capacity-drop",
            metavar="PCT",
            help="Exit 1 when the newest stepped run's fitted peak is more than PCT below "
            "the median of the earlier ones' (10% or 0.1).",
        ),
    ] = None,
    html: Annotated[
        str | None,
        typer.Option("--html", help="Also write a self-contained HTML page here."),
    ] = None,
) -> None:
    """How much the test's target takes: throughput against users, fitted with the
    Universal Scalability Law (contention σ, coherency κ), its peak and the users where it
    peaks, the knee where p95 starts to climb, the fit's R²; and each stepped run's peak
    and knee over time, with change points. Points: the steps of --run, else of the newest
    stepped run, else finished runs at different loads. Fewer than 3 distinct loads: exit 2.
    Needs the optional extra: pip install 'loadmgr[trend]'.
    """
    from loadmgr.errors import ValidationFailed
    from loadmgr.service.analysis.change_points import parse_fraction
    from loadmgr.service.capacity.report import CapacityOptions, capacity_of
    from loadmgr.service.runs.lookup import since_cutoff

    if not 0 < last <= 100_000:
        raise ValidationFailed(f"invalid --last {last} (1 to 100000)")
    drop = (
        parse_fraction("--fail-on-capacity-drop", fail_on_capacity_drop, upper=1.0)
        if fail_on_capacity_drop is not None
        else None
    )
    options = CapacityOptions(
        run=run,
        since=since_cutoff(since) if since is not None else None,
        last=last,
        fail_on_drop=drop,
    )
    found = capacity_of(context.store, test, options)
    if html:
        from loadmgr.cli.metrics.commands import _write
        from loadmgr.service.reports.capacity_html import render_capacity_html

        _write(html, render_capacity_html(found).encode("utf-8"))
    if renderer.quiet:
        renderer.many([{"id": c.run_id} for c in found.trend], [])
    elif renderer.is_table:
        from loadmgr.cli.output import stdout_console

        console = stdout_console()
        console.print(capacity_view(found, min(console.width, 100) if sys.stdout.isatty() else 80))
    elif renderer.format == "csv":  # one row per point fitted
        renderer.many(found.to_document()["points"], [], csv_columns=CAPACITY_CSV)
    else:
        renderer.one(found.to_document())
    if drop is not None and found.drop is not None and found.drop > drop:
        notice(
            f"capacity dropped: the newest stepped run peaks at {found.trend[-1].peak_rps:,.1f} "
            f"req/s, {found.drop:.1%} below the earlier runs' median (allowed {drop:.1%})"
        )
        raise typer.Exit(ExitCode.THRESHOLD_FAILED)


def capacity_view(found: Capacity, width: int) -> RenderableType:
    """The fitted curve, the numbers, the points and the capacity trend."""
    from rich.console import Group
    from rich.table import Table

    from loadmgr.cli.charts import block_chart
    from loadmgr.models.axis import ThresholdLine

    fit = found.fit
    curve = found.curve()
    chart = block_chart(
        "requests per second by users (fitted: Universal Scalability Law)",
        [rps for _, rps in curve],
        width=max(20, width - 20),
        start_label=f"{curve[0][0]:g} user",
        end_label=f"{curve[-1][0]:,.0f} users",
        thresholds=[ThresholdLine(fit.peak_rps, f"peak {fit.peak_rps:,.0f}")],
        from_zero=True,
    )
    where = "one run's steps" if found.source == "steps" else "finished runs at their loads"
    peak_at = f" at {fit.peak_users:,.1f} users" if fit.peak_users is not None else ""
    knee = f"{found.knee_users:g} users" if found.knee_users is not None else "none seen"
    saturated = sum(p.saturated for p in found.points)
    lines = [
        f"fitted on {len(found.points) - saturated} points ({where}"
        + (f": run {found.run_id}" if found.run_id else "")
        + ")"
        + (f"; {saturated} left out: the load generator was saturated" if saturated else ""),
        f"peak {fit.peak_rps:,.1f} req/s{peak_at}"
        + ("" if fit.peak_users is not None else " (no peak: the curve only flattens)"),
        f"knee (p95 starts to climb past) {knee}",
        f"σ {fit.sigma:.4f}  κ {fit.kappa:.6f}  λ {fit.lam:,.2f} req/s a user  R² {fit.r2:.3f}",
    ]
    points = Table(title="points", title_justify="left")
    for header in ("users", "req/s", "fitted", "p95 ms", "run", "step"):
        points.add_column(header, justify="right" if header not in ("run",) else "left")
    for p in found.points:
        points.add_row(
            f"{p.users:g}", f"{p.rps:,.1f}", f"{fit.throughput(p.users):,.1f}",
            "-" if p.p95 is None else f"{p.p95:,.0f}", (p.run_id or "-")[:8],
            ("-" if p.step is None else str(p.step)) + (" saturated" if p.saturated else ""),
        )  # fmt: skip
    parts: list[RenderableType] = [chart, *lines, points]
    if found.trend:
        trend = Table(title="capacity of the stepped runs, oldest first", title_justify="left")
        for header in ("run", "created", "peak req/s", "at users", "knee", "R²", ""):
            trend.add_column(header)
        for c in found.trend:
            trend.add_row(
                c.run_id[:8],
                f"{c.created_at:%Y-%m-%d %H:%M}" if c.created_at else "-",
                "-" if c.peak_rps is None else f"{c.peak_rps:,.1f}",
                "-" if c.peak_users is None else f"{c.peak_users:,.1f}",
                "-" if c.knee_users is None else f"{c.knee_users:g}",
                "-" if c.r2 is None else f"{c.r2:.2f}",
                "▲ new regime" if c.starts_regime else (c.why_not or ""),
            )
        parts.append(trend)
    return Group(*parts)
