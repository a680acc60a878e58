"""`tests trend --html`: a test's series as one self-contained page, and the report's section.

Like the run report (reports.py): inline CSS and inline SVG, no script, no remote resource
(a Content-Security-Policy forbids them), every value from the database escaped. Each
point of a chart links to its run's row in the table below (`#run-<id>`); each change
point is a dashed line with the regimes' means drawn across.
"""

from __future__ import annotations

import math
from datetime import datetime

from loadmgr.models.formatting import format_metric, format_timestamp, runs_count, span_ends
from loadmgr.models.stats.catalog import BY_NAME
from loadmgr.service.analysis.change_points import sensitivity_word
from loadmgr.service.analysis.trends import ChangePoint, MetricTrend, Trend
from loadmgr.service.reports.html import escaped_clean as _e
from loadmgr.service.reports.html import footer, page_head
from loadmgr.service.reports.svg import (
    BOTTOM,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    value_ticks,
)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2937;
margin:0 auto;max-width:980px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#e5e7eb;padding-bottom:4px}.sub{color:#6b7280;margin:0}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #f3f4f6}
td.n,th.n{text-align:right}.bad{color:#dc2626;font-weight:600}.ok{color:#16a34a;
font-weight:600}.muted{color:#6b7280}tr:target{background:#fef3c7}
.trend-chart{display:block;margin:8px 0;max-width:100%;height:auto}
footer{margin-top:32px;color:#9ca3af;font-size:12px}
"""


_TICK = 'fill="#6b7280" font-size="11"'


def _when(value: datetime | None) -> str:
    """A run's date as every output writes dates; the axis' ends are `span_ends`'."""
    return format_timestamp(value) if value else "-"




def _relative(change: ChangePoint) -> str:
    relative = change.relative_change
    return "from 0" if math.isinf(relative) else f"{relative:+.1%}"


def trend_chart(trend: Trend, series: MetricTrend, *, link_runs: bool = True) -> str:
    """One metric over the runs as inline SVG: points (linked to their runs' rows), the
    regimes' means, and a dashed line where each change point starts."""
    count = len(trend.runs)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    known = [v for v in series.values if v is not None and math.isfinite(v)]
    ticks = value_ticks(known)
    top = ticks[-1] if ticks and ticks[-1] > 0 else 1.0
    entry = BY_NAME.get(series.metric)
    title = entry.heading if entry else series.metric

    def sx(index: float) -> float:
        return LEFT + (index / (count - 1) * plot_w if count > 1 else plot_w / 2)

    def sy(value: float) -> float:
        return TOP + plot_h - max(0.0, value) / top * plot_h

    # Styled by attributes, not the page's CSS, so the run report can show it as it is.
    parts = [
        f'<svg class="trend-chart {_e(series.metric)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-label="{_e(title)}" '
        'font-family="system-ui,sans-serif">',
        f"<title>{_e(title)}</title>",
        f'<text x="{LEFT}" y="16" font-weight="600" font-size="13" fill="#374151">'
        f"{_e(title)}</text>",
    ]
    for tick in ticks:
        y = sy(tick)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="#e5e7eb"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" {_TICK}>'
            f"{_e(format_metric(series.metric, tick))}</text>"
        )
    if count:
        ends = span_ends(trend.runs[0].createdAt, trend.runs[-1].createdAt)
        for index, anchor, label in ((0, "start", ends[0]), (count - 1, "end", ends[1])):
            parts.append(
                f'<text x="{sx(index):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" '
                f"{_TICK}>{_e(label)}</text>"
            )
    # The mean of each regime, as a flat line over its runs.
    bounds = [0, *(change.index for change in series.changes), count]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        inside = [i for i in range(lo, hi) if series.regime_means[i] is not None]
        if inside:
            mean = series.regime_means[inside[0]]
            assert mean is not None
            parts.append(
                f'<line class="regime" x1="{sx(inside[0]):.1f}" y1="{sy(mean):.1f}" '
                f'x2="{sx(inside[-1]):.1f}" y2="{sy(mean):.1f}" stroke="#9ca3af" '
                'stroke-width="1.5" stroke-dasharray="2 2"/>'
            )
    for change in series.changes:
        color = "#dc2626" if change.regression else "#16a34a"
        x = sx(change.index - 0.5)
        parts.append(
            f'<line class="change-point" data-run="{_e(change.run_id)}" x1="{x:.1f}" '
            f'y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="{color}" '
            'stroke-width="1.5" stroke-dasharray="5 3">'
            f"<title>{_e(_change_text(trend, change))}</title></line>"
        )
    path: list[str] = []
    for index, value in enumerate(series.values):
        if value is None or not math.isfinite(value) or not trend.runs[index].comparable:
            continue
        path.append(f"{'M' if not path else 'L'}{sx(index):.1f},{sy(value):.1f}")
    if len(path) > 1:
        parts.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="#2563eb" stroke-width="1.5"/>'
        )
    for index, (run, value) in enumerate(zip(trend.runs, series.values, strict=True)):
        if value is None or not math.isfinite(value):
            continue
        fill = "#2563eb" if run.comparable else "#ffffff"
        label = f"{run.name or run.id} ({_when(run.createdAt)}): " + format_metric(
            series.metric, value
        ) + ("" if run.comparable else " (another load: not searched)")
        point = (
            f'<circle class="point" data-run="{_e(run.id)}" cx="{sx(index):.1f}" '
            f'cy="{sy(value):.1f}" r="3.5" fill="{fill}" stroke="#2563eb">'
            f"<title>{_e(label)}</title></circle>"
        )
        parts.append(f'<a href="#run-{_e(run.id)}">{point}</a>' if link_runs else point)
    if not known:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" '
            'text-anchor="middle" fill="#9ca3af">no data</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _change_text(trend: Trend, change: ChangePoint) -> str:
    run = trend.runs[change.index]
    kind = "regression" if change.regression else "improvement"
    return (
        f"{change.metric}: {format_metric(change.metric, change.before)} → "
        f"{format_metric(change.metric, change.after)} ({_relative(change)}) from run "
        f"{run.name or run.id} ({_when(run.createdAt)}), {kind}, p={change.p_value:.2g}"
    )


def _runs_table(trend: Trend) -> str:
    starts = {(c.metric, c.index): c for c in trend.change_points}
    heads = "".join(f'<th class="n">{_e(m.metric)}</th>' for m in trend.metrics)
    rows = []
    for position, run in enumerate(trend.runs):
        load = run.load_document()
        cells = [
            f'<td class="n">{position + 1}</td>',
            f'<td><a href="#run-{_e(run.id)}">{_e(run.id)}</a><br><span class="sub">'
            f"{_e(run.name)}</span></td>",
            f"<td>{_e(_when(run.createdAt))}</td>",
            f'<td class="{"" if run.comparable else "muted"}">'
            f"{_e(load['targetUsers'])} users, {_e(load['spawnRate'])}/s, "
            f"{_e(load['durationSeconds'])} s, {_e(load['locustClusterId'])}"
            f"{'' if run.comparable else ' (another load)'}</td>",
        ]
        for series in trend.metrics:
            change = starts.get((series.metric, position))
            mark = ""
            if change is not None:
                css = "bad" if change.regression else "ok"
                mark = f' <span class="{css}" title="{_e(_change_text(trend, change))}">▲</span>'
            cells.append(
                f'<td class="n">{_e(format_metric(series.metric, series.values[position]))}'
                f"{mark}</td>"
            )
        rows.append(f'<tr id="run-{_e(run.id)}">{"".join(cells)}</tr>')
    return (
        "<table><thead><tr><th class=\"n\">#</th><th>Run</th><th>Created</th><th>Load</th>"
        f"{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _changes_list(trend: Trend, link_runs: bool) -> str:
    if not trend.searched:
        return (
            "<p>Change points were not searched: install the optional extra "
            "(<code>pip install 'loadmgr[trend]'</code>).</p>"
        )
    changes = trend.change_points
    if not changes:
        return "<p>No change point: every series is steady within its noise.</p>"
    items = "".join(
        f'<li class="{"bad" if c.regression else "ok"}">'
        + (f'<a href="#run-{_e(c.run_id)}">{_e(_change_text(trend, c))}</a>' if link_runs
           else _e(_change_text(trend, c)))
        + "</li>"
        for c in changes
    )
    return f'<ul class="change-points">{items}</ul>'


def trend_section(trend: Trend) -> str:
    """The charts, change points and runs: the page's body."""
    if not trend.runs:
        return "<p>No finished run with final numbers yet.</p>"
    charts = "\n".join(trend_chart(trend, series) for series in trend.metrics)
    note = (
        f"<p class=\"sub\">{trend.incomparable} run(s) of another load than the newest "
        "(hollow points) are shown but not searched: their numbers are not comparable.</p>"
        if trend.incomparable
        else ""
    )
    return (
        f"{charts}\n{note}<h3>Change points</h3>{_changes_list(trend, True)}"
        f"<h3>Runs</h3>{_runs_table(trend)}"
    )


def render_trend_html(trend: Trend) -> str:
    """The whole page as one HTML document."""
    name = trend.test.name
    detection = trend.options.detection
    request = f" · request {_e(trend.options.request)}" if trend.options.request else ""
    return f"""{page_head(f"loadmgr trend: {name}", CSS)}
<body>
<header><h1>Trend of {_e(name)}</h1>
<p class="sub">Test {_e(trend.test.id)} · {runs_count(len(trend.runs))}{request} ·
sensitivity {sensitivity_word(detection.sensitivity)}, p &lt; {detection.p_value:g}, change ≥
{detection.min_change:.0%}</p></header>
<section id="trend">{trend_section(trend)}</section>
{footer()}
</body>
</html>
"""


def report_section(trend: Trend | None) -> str:
    """The test's recent trend in a run's report (`metrics report`): charts up to the run
    and their change points, for context (the run is the last point)."""
    if trend is None or not trend.runs:
        return "<p>No trend: the run is not a finished run of a test with final numbers.</p>"
    charts = "\n".join(trend_chart(trend, series, link_runs=False) for series in trend.metrics)
    return (
        f"<p>The last {runs_count(len(trend.runs))} of the test up to this one; this run is "
        f"the last point.</p>{charts}\n{_changes_list(trend, False)}"
        f'<p class="muted">{_e(_newest_text(trend))}</p>'
    )


def _newest_text(trend: Trend) -> str:
    regressions = trend.regressions_now()
    if not trend.searched:
        return "Change points not searched."
    if not regressions:
        return "This run is in no regression regime."
    return "This run is in a regression regime: " + "; ".join(
        f"{c.metric} {_relative(c)} since run {trend.runs[c.index].name or c.run_id}"
        for c in regressions
    ) + "."
