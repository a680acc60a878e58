"""How `loadmgr metrics` looks on a terminal: summary panel, charts, tables, comparison."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loadmgr.cli.output import Column, field, key_value_view, sanitize
from loadmgr.models.formatting import format_count as fmt_count
from loadmgr.models.formatting import format_ms as fmt_ms
from loadmgr.models.formatting import format_percent as fmt_pct
from loadmgr.models.formatting import format_rps as fmt_rate
from loadmgr.models.formatting import side_by_side
from loadmgr.models.stats.catalog import SUMMARY_LATENCIES
from loadmgr.service.analysis.views import LATENCY_KEYS

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

    from loadmgr.service.analysis.compare import Comparison


def fmt_duration(seconds: Any) -> str:
    from loadmgr.models import format_duration

    return format_duration(None if seconds is None else float(seconds))


def clock(value: Any) -> str:
    """`14:03:05` from an ISO timestamp (the date is in the data formats)."""
    if not isinstance(value, str):
        return "-"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%H:%M:%S")
    except ValueError:
        return sanitize(value, in_cell=True)


def number(header: str, key: str, fmt: Callable[[Any], str]) -> Column:
    """A right-aligned column of one formatted number of the document."""
    return Column(header, lambda d: fmt(d.get(key)), "right")


# -- summary -------------------------------------------------------------------------------

# `-o csv` of `metrics show --view summary` (docs/output.md); `window.*` and
# `exactPercentiles` are filled with --from/--to.
SUMMARY_CSV = (
    "runId",
    "name",
    "loadTestId",
    "testName",
    "status",
    "verdict",
    "verdictReasons.kind",
    "verdictReasons.message",
    "stopReason",
    "startedAt",
    "finishedAt",
    "durationSec",
    "targetUsers",
    "maxUsers",
    "intervals",
    "source",
    "requests",
    "failures",
    "errorRate",
    "rpsMean",
    "rpsMax",
    *LATENCY_KEYS,
    "window.fromSec",
    "window.toSec",
    "window.seconds",
    "window.intervals",
    "exactPercentiles",
    "thresholdResults.expression",
    "thresholdResults.actual",
    "thresholdResults.passed",
)


def summary_view(data: dict[str, Any]) -> RenderableType:
    from rich.console import Group

    from loadmgr.cli.runs.views import threshold_table, verdict_cell, verdict_view

    so_far = " so far" if data.get("source") == "lastInterval" else ""
    fields = {
        "run": f"{data.get('name')} ({data.get('runId')})",
        "test": f"{data.get('testName') or '?'} ({data.get('loadTestId')})",
        "status": data.get("status"),
        "verdict": verdict_cell(data),
        "stop reason": data.get("stopReason") or "-",
        "duration": fmt_duration(data.get("durationSec")),
        "users": f"{data.get('targetUsers')} target, {fmt_count(data.get('maxUsers'))} peak",
        "requests": f"{fmt_count(data.get('requests'))}{so_far} "
        f"({fmt_count(data.get('failures'))} failed, {fmt_pct(data.get('errorRate'))})",
        "rps": f"mean {fmt_rate(data.get('rpsMean'))}  max {fmt_rate(data.get('rpsMax'))}",
        "latency": "  ".join(
            f"{m.name} {fmt_ms(data.get(m.total_key))}" for m in SUMMARY_LATENCIES
        ),
        "intervals": data.get("intervals") or "as collected",
    }
    window = data.get("window")
    if isinstance(window, dict):
        # `metrics show --from/--to`: say which part of the run these numbers are.
        exact = "exact percentiles" if data.get("exactPercentiles") else (
            "no percentiles: the run has no histograms (recorded without the plugin)"
        )
        count = window.get("intervals")
        fields["window"] = (
            f"{fmt_duration(window.get('fromSec'))} to {fmt_duration(window.get('toSec'))} "
            f"into the run, {fmt_count(count)} interval{'' if count == 1 else 's'}, {exact}"
        )
        fields["duration"] = fmt_duration(window.get("seconds"))
    parts: list[Any] = [key_value_view(fields, title="summary"), verdict_view(data)]
    results = data.get("thresholdResults") or []
    if results:
        parts.append(threshold_table(results))
    return Group(*parts)


# -- timeseries ----------------------------------------------------------------------------

TIMESERIES_COLUMNS = [
    Column("TIME", lambda d: clock(d.get("timestamp"))),
    number("USERS", "currentUsers", fmt_count),
    number("RPS", "totalRPS", fmt_rate),
    number("FAIL/S", "failuresPerSec", fmt_rate),
    number("P50", "p50ResponseMs", fmt_ms),
    number("P95", "p95ResponseMs", fmt_ms),
    number("ERRORS", "intervalFailures", fmt_count),
]
MERGED_COLUMN = number("INTERVALS", "intervals", fmt_count)


def timeseries_charts(
    rows: Sequence[dict[str, Any]],
    width: int,
    *,
    start: datetime | None = None,
    end: float | None = None,
    thresholds: Sequence[str] = (),
) -> RenderableType:
    """RPS, p95, error rate and users over the run, one chart under the other.

    With `start` (the run's first second) and `end` (its length in seconds) the charts
    share a time axis from 0 to the run's end; the run's `thresholds` on RPS, p95 and
    error rate are drawn on their charts.
    """
    from rich.console import Group
    from rich.text import Text

    from loadmgr.cli.charts import block_chart
    from loadmgr.models.axis import ThresholdLine, threshold_lines
    from loadmgr.service.analysis.latency import elapsed

    first = clock(rows[0].get("timestamp")) if rows else ""
    last = clock(rows[-1].get("timestamp")) if rows else ""
    times: list[float] | None = None
    if start is not None and end:
        moments = [elapsed(r.get("timestamp"), start) for r in rows]
        times = [m if m is not None else -1.0 for m in moments]
    charts: list[Any] = []
    marks = [len(expression) + 1 for expression in thresholds]
    # Rates and users rise from 0 (a bar's height is its value); latency may be zoomed.
    for title, key, fmt, style, metric, scale, from_zero in (
        ("RPS", "totalRPS", fmt_rate, "cyan", "rps", 1.0, True),
        ("p95 latency", "p95ResponseMs", fmt_ms, "magenta", "p95", 1.0, False),
        ("error rate", "errorRate", _fmt_percent, "red", "error_rate", 100.0, True),
        ("users", "currentUsers", fmt_count, "green", None, 1.0, True),
    ):
        values = [None if r.get(key) is None else float(r[key]) * scale for r in rows]
        lines = [
            ThresholdLine(line.value * scale, line.label)
            for line in (threshold_lines(thresholds, metric) if metric else [])
        ]
        charts.append(
            block_chart(
                title, values, width=width, fmt=fmt, start_label=first, end_label=last,
                style=style, times=times, end=end, thresholds=lines, label_width=8,
                mark_width=max(marks, default=0), from_zero=from_zero,
            )
        )
        charts.append(Text(""))
    return Group(*charts)


def _fmt_percent(value: float) -> str:
    """An error rate already in percent (the chart's scale), as `fmt_pct` shows fractions."""
    return fmt_pct(value / 100.0)


def scatter_view(
    grouped: dict[tuple[str, str], list[tuple[float, float]]],
    width: int,
    *,
    end: float,
    thresholds: Sequence[str] = (),
) -> RenderableType:
    """Each interval's p95 per request (`latency_views.by_request`) against the time since
    the run started."""
    from loadmgr.cli.metrics.scatter import scatter_plot
    from loadmgr.models.axis import threshold_lines

    lines = threshold_lines(thresholds, "p95")
    for request in grouped:
        lines += [line for line in threshold_lines(thresholds, "p95", request) if line.request]
    groups = [(sanitize(f"{m} {n}", in_cell=True), pts) for (m, n), pts in grouped.items()]
    return scatter_plot(
        "p95 latency of each request, per interval (one dot per interval)",
        groups, end=end, width=width, fmt=fmt_ms, thresholds=lines,
    )


# -- per request and errors ----------------------------------------------------------------

REQUEST_COLUMNS = [
    field("method", "METHOD"),
    field("name", "NAME"),
    number("REQUESTS", "numRequests", fmt_count),
    number("FAILURES", "numFailures", fmt_count),
    number("MEAN", "avgResponseTimeMs", fmt_ms),
    number("MIN", "minResponseTimeMs", fmt_ms),
    number("MAX", "maxResponseTimeMs", fmt_ms),
    number("P50", "p50ResponseMs", fmt_ms),
    number("P95", "p95ResponseMs", fmt_ms),
    number("P99", "p99ResponseMs", fmt_ms),
    number("RPS", "requestsPerSec", fmt_rate),
]

REQUEST_CSV = (
    "method",
    "name",
    "numRequests",
    "numFailures",
    "errorRate",
    "avgResponseTimeMs",
    "minResponseTimeMs",
    "maxResponseTimeMs",
    "p50ResponseMs",
    "p90ResponseMs",
    "p95ResponseMs",
    "p99ResponseMs",
    "requestsPerSec",
    "failuresPerSec",
    "avgContentLength",
)

ERROR_COLUMNS = [
    field("method", "METHOD"),
    field("name", "NAME"),
    field("error", "ERROR"),
    number("COUNT", "occurrences", fmt_count),
]
ERROR_CSV = ("method", "name", "error", "occurrences")


# -- compare -------------------------------------------------------------------------------

# `-o csv` of `metrics compare`: one row per request, metric and run; changes against the
# first run, computed on the stored values.
COMPARE_CSV = (
    "request",
    "metric",
    "runId",
    "position",
    "value",
    "baseline",
    "change",
    "relativeChange",
    "regression",
    "significant",
    "pValue",
    "test",
    "detectable",
    "floor",
    "inconclusive",
)


def compare_view(comparison: Comparison) -> RenderableType:
    """Each metric side by side, per request; later runs show their change vs the first."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from loadmgr.models.stats.catalog import metric as catalog_metric

    legend = Table.grid(padding=(0, 2))
    for index, run in enumerate(comparison.runs, start=1):
        legend.add_row(
            Text(f"#{index}", style="bold"),
            Text(sanitize(f"{run.id}  {run.name}  (test {run.loadTestId})", in_cell=True)),
        )
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("REQUEST", overflow="fold")
    table.add_column("METRIC")
    for index in range(1, len(comparison.runs) + 1):
        table.add_column(f"#{index}", justify="right")
    count = len(comparison.runs)
    rows = comparison.rows
    previous_request = None
    for start in range(0, len(rows), count):
        group = rows[start : start + count]
        request, metric = group[0]["request"], group[0]["metric"]
        if previous_request is not None and request != previous_request:
            table.add_section()
        label = sanitize(request, in_cell=True) if request != previous_request else ""
        previous_request = request
        direction = catalog_metric(metric).direction
        texts, changes = side_by_side(metric, [row["value"] for row in group])
        cells: list[Text] = [Text(texts[0])]
        for row, text, change in zip(group[1:], texts[1:], changes, strict=True):
            cells.append(_change_cell(row, text, change, direction))
        table.add_row(Text(label), metric, *cells)
    key = Text(
        "* significant (Mann-Whitney U over the steady intervals, p < 0.05); "
        "? beyond the limit but not significant",
        style="dim",
    )
    return Group(legend, Text(""), table, Text(""), key)


def _change_cell(row: dict[str, Any], text: str, change: str | None, direction: int) -> Text:
    """`148ms (+28ms +23.3%)`: the value, its change from the first run, and whether worse."""
    from rich.text import Text

    cell = Text(text)
    if change is None:
        return cell
    relative = row.get("relativeChange")
    rel = "" if relative is None else f" {relative:+.1%}"
    style = ""
    if row.get("regression"):
        style = "bold red"
    elif direction and (row.get("change") or 0) * direction < 0:
        style = "green"
    cell.append(f" ({change}{rel})", style=style or "dim")
    if row.get("regression"):
        cell.append(" ✗ worse", style="bold red")
    elif row.get("inconclusive"):
        cell.append(" ? not significant", style="yellow")
    elif row.get("note") == "below the floor":
        cell.append(" below floor", style="dim")
    elif row.get("significant"):
        cell.append(" *", style="bold")  # significant (the legend says so)
    return cell
