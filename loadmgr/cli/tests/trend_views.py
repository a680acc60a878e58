"""How `loadmgr tests trend` looks on a terminal: a chart per metric, the runs, the shifts."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from loadmgr.cli.output import iso, sanitize
from loadmgr.models.formatting import format_metric, format_percent, runs_count, span_ends
from loadmgr.models.stats.catalog import BY_NAME

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.service.analysis.trends import ChangePoint, MetricTrend, Trend
    from loadmgr.service.analysis.triage import Explanation

CHANGE_MARK = "▲"  # a regime that is a regression starts
BETTER_MARK = "△"  # one that is an improvement: told apart without colour too
OTHER_LOAD_MARK = "≠"


def short_date(value: datetime | None) -> str:
    """`2026-11-20`: the day a run was created."""
    return iso(value)[:10] if value is not None else "-"


def describe_change(trend: Trend, change: ChangePoint) -> str:
    """`p95 101 ms → 130 ms (+28.7%) from run 3f2a1b2c… (2026-11-20): regression`."""
    run = trend.runs[change.index]
    relative = change.relative_change
    amount = "from 0" if math.isinf(relative) else f"{relative:+.1%}"
    kind = "regression" if change.regression else "improvement"
    return (
        f"{change.metric} {format_metric(change.metric, change.before)} → "
        f"{format_metric(change.metric, change.after)} ({amount}) from run {run.id[:8]} "
        f"({short_date(run.createdAt)}): {kind}"
    )


def _column_of(index: int, count: int, width: int) -> int:
    """The chart column `resample` puts value `index` of `count` into, at `width`."""
    if count <= width:
        return index * max(1, width // count)
    return min(width - 1, (index * width + width - 1) // count)


def metric_chart(trend: Trend, series: MetricTrend, width: int) -> RenderableType:
    """A block chart of one metric over the runs, a mark under each change point."""
    from rich.console import Group
    from rich.text import Text

    from loadmgr.cli.charts import bar_rows, labelled_ticks, row_labels
    from loadmgr.models.axis import resample

    def fmt(value: float) -> str:
        return format_metric(series.metric, value)

    shown = [
        value if run.comparable else None
        for run, value in zip(trend.runs, series.values, strict=True)
    ]
    known = [v for v in shown if v is not None and math.isfinite(v)]
    entry = BY_NAME.get(series.metric)
    head = Text(entry.title if entry else series.metric, style="bold")
    median, latest = series.median, series.latest
    if latest is not None and median is not None:
        relative = (latest - median) / abs(median) if median else None
        versus = f" ({relative:+.1%})" if relative is not None else ""
        head.append(f"  latest {fmt(latest)} vs median {fmt(median)}{versus}", style="dim")
    if not known:
        head.append("  no data", style="dim")
        return head
    height = 5
    # Round (1-2-5) values on the row edges, as on a run's own charts.
    ticks = labelled_ticks(min(known), max(known), height, fmt)
    bottom, top = ticks[0], ticks[-1]
    labels, bottom_label = row_labels(ticks, height, fmt)
    label_width = max(len(bottom_label), *(len(label) for label in labels))
    plot_width = max(10, width - label_width - 2)
    columns = resample(shown, plot_width)
    lines: list[RenderableType] = [head]
    for label, row in zip(labels, bar_rows(columns, len(labels), top, bottom), strict=True):
        line = Text(f"{label:>{label_width}} ┤", style="dim")
        line.append(row, style="cyan")
        lines.append(line)
    marks = [" "] * len(columns)
    styles: dict[int, str] = {}
    for position, run in enumerate(trend.runs):
        if not run.comparable:
            column = _column_of(position, len(trend.runs), len(columns))
            marks[column] = OTHER_LOAD_MARK
            styles[column] = "dim"
    for change in series.changes:
        column = _column_of(change.index, len(trend.runs), len(columns))
        marks[column] = _mark(change)
        styles[column] = "bold red" if change.regression else "bold green"
    axis = Text(f"{bottom_label:>{label_width}} └", style="dim")
    for column, mark in enumerate(marks):
        axis.append(mark if mark != " " else "─", style=styles.get(column, "dim"))
    lines.append(axis)
    first, last = span_ends(trend.runs[0].createdAt, trend.runs[-1].createdAt)
    gap = max(1, len(columns) - len(first) - len(last))
    lines.append(Text(" " * (label_width + 2) + first + " " * gap + last, style="dim"))
    return Group(*lines)


# `-o csv` of `tests trend` (docs/output.md): one row per run and metric, as `Trend.rows`.
TREND_CSV = (
    "runId",
    "runName",
    "createdAt",
    "position",
    "metric",
    "request",
    "value",
    "targetUsers",
    "spawnRate",
    "durationSeconds",
    "locustClusterId",
    "comparable",
    "regimeMean",
    "startsRegime",
    "meanBefore",
    "meanAfter",
    "relativeChange",
    "regression",
    "pValue",
)
TABLE_ROWS = 60  # the newest runs in the table; every one is in the chart and in -o csv


def runs_table(trend: Trend) -> RenderableType:
    """One row per run (the newest TABLE_ROWS): when, the load, each metric (▲ where a
    regime starts)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for header, justify in (("#", "right"), ("RUN", "left"), ("CREATED", "left"),
                            ("LOAD", "left")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for series in trend.metrics:
        table.add_column(series.metric.upper(), justify="right")
    starts = {(c.metric, c.index): c for c in trend.change_points}
    first = max(0, len(trend.runs) - TABLE_ROWS)
    for position, run in enumerate(trend.runs):
        if position < first:
            continue
        users, rate, duration, cluster = run.load
        load = f"{users} u, {rate:g}/s, {duration} s" if rate is not None else f"{users} u"
        if cluster and cluster != "local":
            load += f" on {cluster}"
        cells = [
            Text(str(position + 1)),
            Text(sanitize(run.id[:8], in_cell=True)),
            Text(short_date(run.createdAt)),
            Text(load if run.comparable else f"{OTHER_LOAD_MARK} {load}",
                 style="" if run.comparable else "dim"),
        ]
        for series in trend.metrics:
            text = Text(format_metric(series.metric, series.values[position]))
            change = starts.get((series.metric, position))
            if change is not None:
                text.append(f" {_mark(change)}", style="bold red" if change.regression else "green")
            cells.append(text)
        table.add_row(*cells)
    return table


def trend_view(trend: Trend, width: int = 80) -> RenderableType:
    """The whole `tests trend` for people."""
    from rich.console import Group
    from rich.text import Text

    name = sanitize(trend.test.name, in_cell=True)
    request = f", request {sanitize(trend.options.request)}" if trend.options.request else ""
    title = Text(f"test {name}: {runs_count(len(trend.runs))}{request}", style="bold")
    if not trend.runs:
        return Group(title, Text("no finished run with final numbers yet", style="dim"))
    parts: list[RenderableType] = [title, Text("")]
    for series in trend.metrics:
        parts += [metric_chart(trend, series, width), Text("")]
    if len(trend.runs) > TABLE_ROWS:
        older = len(trend.runs) - TABLE_ROWS
        parts.append(Text(f"{older} older runs are in the charts, not the table (-o csv: all)",
                          style="dim"))
    parts += [runs_table(trend), Text("")]
    changes = trend.change_points
    if changes:
        parts.append(Text("change points:", style="bold"))
        for change in changes:
            style = "red" if change.regression else "green"
            parts.append(Text(f"  {_mark(change)} {describe_change(trend, change)}", style=style))
    else:
        parts.append(Text("no change point: every series is steady within its noise"))
    parts.append(Text(newest_line(trend)))
    # Only the marks drawn are explained.
    legend = []
    if any(change.regression for change in changes):
        legend.append(f"{CHANGE_MARK} a regression starts")
    if any(not change.regression for change in changes):
        legend.append(f"{BETTER_MARK} an improvement starts")
    if trend.incomparable:
        legend.append(f"{OTHER_LOAD_MARK} another load than the newest run (not searched)")
    if legend:
        parts.append(Text("; ".join(legend), style="dim"))
    return Group(*parts)


def _mark(change: ChangePoint) -> str:
    return CHANGE_MARK if change.regression else BETTER_MARK


def newest_line(trend: Trend) -> str:
    """Where the newest run stands: in a regression regime or not."""
    regressions = trend.regressions_now()
    since = ""
    if trend.ack:
        since = f" since the change acknowledged at run {str(trend.ack['runId'])[:8]}"
    if not regressions:
        return f"newest run: no regression regime{since}"
    described = "; ".join(
        f"{c.metric} {format_percent(abs(c.worse_by), 1)} worse since run "
        f"{trend.runs[c.index].id[:8]}"
        if not math.isinf(c.worse_by)
        else f"{c.metric} up from 0 since run {trend.runs[c.index].id[:8]}"
        for c in regressions
    )
    return f"newest run: in a regression regime ({described}){since}"


def explained_view(trend: Trend, explained: list[Explanation]) -> RenderableType:
    """`tests trend --explain`: per change point, the requests that moved (ranked), the
    latency bands, and whether tests sharing the cluster or target host changed too."""
    from rich.text import Text

    if not explained:
        return Text("no change point to explain")
    lines = []
    for item in explained:
        change = item.change
        moved = change.to_document()["relativeChange"]
        how = "up from 0" if moved is None else f"{moved:+.1%}"
        mark = "▲ regression" if change.regression else "△ improvement"
        run = trend.runs[change.index]
        lines.append(
            f"{change.metric} {how} at run {run.id[:8]} ({short_date(run.createdAt)}): {mark}"
        )
        for row in item.requests[:5]:
            lines.append(
                f"  {row['rank']}. {sanitize(row['request'])}: p95 {_change(row['p95Change'])}, "
                f"rps {_change(row['rpsChange'])}"
            )
        bands = " · ".join(f"{b['band']} {_change(b['change'])}" for b in item.bands)
        lines.append(f"  latency bands: {bands}: {item.shape}")
        if item.elsewhere:
            others = ", ".join(f"{sanitize(o['test'])} ({o['shares']})" for o in item.elsewhere)
            lines.append(f"  environment-wide: changed the same day too: {others}")
    return Text("\n".join(lines))


def _change(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"
