"""The charts of a run's HTML report: over time (RPS, latency, error rate, users), the
latency scatter per request and the latency heatmap, with the run's thresholds drawn on
the charts of their metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loadmgr.models import LoadTestRun
from loadmgr.models.axis import ThresholdLine, threshold_lines
from loadmgr.models.stats.generator import saturation_level
from loadmgr.service.analysis.latency import (
    Heatmap,
    elapsed,
    run_length,
    run_start,
    scatter_and_heatmap,
)
from loadmgr.service.reports.svg import line_chart
from loadmgr.service.reports.svg_plots import heatmap_chart, scatter_chart

if TYPE_CHECKING:
    from loadmgr.service.server_metrics.readings import ServerSeries
    from loadmgr.store import Store

# Per request at most one dot per 1/1000 of the run (the highest): more than a page shows.
SCATTER_COLUMNS = 1_000


@dataclass
class ReportCharts:
    """What the charts need beyond the downsampled series, gathered once."""

    origin: datetime | None = None
    x_end: float | None = None
    thresholds: list[str] = field(default_factory=list)
    scatter: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    heatmap: Heatmap = field(default_factory=Heatmap)
    server: list[ServerSeries] = field(default_factory=list)  # one per server metric
    # The busiest worker's CPU per interval (issue 24), and the run's saturation level.
    worker_cpu: list[tuple[float, float | None]] = field(default_factory=list)
    saturation_pct: float | None = None


# The busiest worker's CPU of each merged row: asked of the series' own merge
# (`views.timeseries(extra=…)`), so the CPU chart costs no second pass over the intervals.
WORKER_CPU = {"generatorCpu": {"$max": "$generator.cpuMaxPct"}}


def gather_charts(
    store: Store,
    run: LoadTestRun,
    first_timestamp: Any = None,
    last_seq: int | None = None,
    merged: Sequence[dict[str, Any]] | None = None,
) -> ReportCharts:
    """The charts' data. `last_seq`: the run's last interval when the caller read it;
    `merged`: the series' rows when the database merged them with WORKER_CPU."""
    from loadmgr.service.server_metrics.readings import server_rows, server_series

    x_end = run_length(run)
    origin = run_start(run, first_timestamp)
    scatter, matrix = scatter_and_heatmap(store, run, end=x_end, columns=SCATTER_COLUMNS)
    return ReportCharts(
        origin=origin,
        x_end=x_end,
        thresholds=list(run.thresholds),
        scatter=scatter,
        heatmap=matrix,
        server=server_series(server_rows(store, run, origin)) if run.serverMetrics else [],
        worker_cpu=_worker_cpu(store, run, origin, last_seq=last_seq, merged=merged),
        saturation_pct=saturation_level(run),
    )


def _worker_cpu(
    store: Store,
    run: LoadTestRun,
    origin: datetime | None,
    points: int = 300,
    last_seq: int | None = None,
    merged: Sequence[dict[str, Any]] | None = None,
) -> list[tuple[float, float | None]]:
    """The busiest worker's CPU on the run's time axis (each point the highest of the
    intervals the database merged into it); empty when no interval read the generator.
    `merged`: rows merged `points` at a time with WORKER_CPU already (not read again)."""
    (key,) = WORKER_CPU
    rows = merged
    if rows is None:
        last = store.metrics.last_seq(run.id) if last_seq is None else last_seq
        step = max(1, math.ceil(last / points))
        rows = store.metrics.downsampled(run.id, step, WORKER_CPU)
    out = []
    for row in rows:
        x = elapsed(row.get("timestamp"), origin)
        if x is not None:
            out.append((x, row.get(key)))
    return out if any(y is not None for _, y in out) else []


# Charts over time: title, interval field, colour, CSS class, threshold metric, scale, unit.
_OVER_TIME = (
    ("Requests per second", "totalRPS", "#2563eb", "rps", "rps", 1.0, ""),
    ("p95 latency", "p95ResponseMs", "#c026d3", "p95", "p95", 1.0, " ms"),
    ("Error rate", "errorRate", "#dc2626", "errors", "error_rate", 100.0, "%"),
    ("Users", "currentUsers", "#16a34a", "users", None, 1.0, ""),
)


def over_time_html(series: Sequence[dict[str, Any]], charts: ReportCharts) -> str:
    """RPS, p95, each server metric under them, error rate and users, each from the run's
    start to its end."""
    out = []
    for title, key, color, css, metric, scale, unit in _OVER_TIME:
        if metric == "error_rate":
            out.extend(_server_html(charts))
        if metric is None and charts.worker_cpu:  # the generator's, beside the users
            level = charts.saturation_pct
            saturated = [ThresholdLine(level, f"saturated at {level:g}%")] if level else []
            out.append(
                line_chart(
                    "Load generator: busiest worker's CPU",
                    charts.worker_cpu,
                    color="#0891b2",
                    css_class="chart worker-cpu",
                    x_end=charts.x_end,
                    thresholds=saturated,
                    unit="%",
                    steps=True,
                )
            )
        points: list[tuple[float, float | None]] = []
        for row in series:
            x = elapsed(row.get("timestamp"), charts.origin)
            if x is None:
                continue
            value = row.get(key)
            points.append((x, None if value is None else float(value) * scale))
        lines = [
            ThresholdLine(line.value * scale, line.label)
            for line in (threshold_lines(charts.thresholds, metric) if metric else [])
        ]
        out.append(
            line_chart(
                title,
                points,
                color=color,
                css_class=f"chart {css}",
                x_end=charts.x_end,
                thresholds=lines,
                unit=unit,
                steps=True,
            )
        )
    return "\n".join(out)


def _server_html(charts: ReportCharts) -> list[str]:
    """A chart per server metric read from Prometheus, its thresholds on it, a gap where a
    value could not be read, and why."""
    from loadmgr.models.formatting import format_number
    from loadmgr.service.reports.html import escaped_clean

    out = []
    for item in charts.server:
        unit = f" ({item.unit})" if item.unit else ""
        points = [(x, y) for x, y in zip(item.times, item.values, strict=True) if x >= 0]
        out.append(
            line_chart(
                f"Server {item.metric.removeprefix('server.')}{unit}",
                points,
                fmt=format_number,
                color="#b45309",
                css_class="chart server",
                x_end=charts.x_end,
                thresholds=threshold_lines(charts.thresholds, item.metric),
                steps=True,
            )
        )
        if item.reasons:
            why = "; ".join(f"{reason} ({n})" for reason, n in item.reasons.items())
            out.append(
                f'<p class="sub server-missing">{escaped_clean(item.metric)}: '
                f"{sum(item.reasons.values())} interval(s) not read: {escaped_clean(why)}</p>"
            )
    return out


def latency_html(charts: ReportCharts) -> str:
    """The scatter of each request's p95 per interval, and the latency heatmap."""
    groups = [(f"{method} {name}", points) for (method, name), points in charts.scatter.items()]
    lines: list[ThresholdLine] = threshold_lines(charts.thresholds, "p95")
    for request in charts.scatter:
        lines += [
            line
            for line in threshold_lines(charts.thresholds, "p95", request)
            if line.request is not None
        ]
    scatter = scatter_chart(
        "p95 latency of each request, per interval", groups, x_end=charts.x_end, thresholds=lines
    )
    note = (
        '<p class="sub">Each dot is one interval of one request: its p95 response time. '
        "Outliers and a second band of latencies show here where a line hides them.</p>"
    )
    hm = charts.heatmap
    if hm.intervals:
        heat = heatmap_chart("Latency distribution over time", hm, x_end=charts.x_end)
        if hm.without_histogram:
            heat += (
                f'<p class="sub">{hm.without_histogram:,} intervals have no histogram and are '
                "left out.</p>"
            )
    else:
        heat = (
            '<p class="heatmap-missing">The latency heatmap needs the histograms the loadmgr '
            "Locust plugin stores with each interval; this run was recorded without it "
            "(see <code>loadmgr clusters plugin</code>).</p>"
        )
    return f"{scatter}\n{note}\n{heat}"
