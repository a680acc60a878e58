"""The report's point charts: the latency scatter and the latency heatmap, as inline SVG.

They share `svg.Frame` with the line charts, so every chart of a report has the same
width, round ticks and a time axis from the run's start to its end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from loadmgr.models.axis import ThresholdLine, elapsed_label, within_reach
from loadmgr.service.analysis.latency import Heatmap
from loadmgr.service.reports.svg import HEIGHT, LEFT, TOP, WIDTH, time_frame, value_ticks

# One colour per request, in turn (distinguishable, and readable on white).
PALETTE = ("#2563eb", "#c026d3", "#16a34a", "#ea580c", "#0891b2", "#9333ea", "#ca8a04",
           "#dc2626", "#4b5563", "#db2777")
LEGEND_ROW = 16


def scatter_chart(
    title: str,
    groups: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    x_end: float | None = None,
    thresholds: Sequence[ThresholdLine] = (),
    css_class: str = "chart scatter",
) -> str:
    """A dot per point, one colour per group (request), with a legend under the plot."""
    values = [y for _, points in groups for _, y in points]
    xs = [x for _, points in groups for x, _ in points]
    legend_rows = math.ceil(len(groups) / 3)
    # A threshold far above every point is named, not drawn: the dots keep the height.
    shown = within_reach(values, thresholds)
    frame = time_frame(
        title, xs, x_end, value_ticks(values, shown), unit=" ms",
        below=legend_rows * LEGEND_ROW + 8,
    )
    parts = frame.open(css_class)
    for index, (label, points) in enumerate(groups):
        color = PALETTE[index % len(PALETTE)]
        dots = "".join(
            f'<circle cx="{frame.sx(x):.1f}" cy="{frame.sy(y):.1f}" r="2.2"/>' for x, y in points
        )
        parts.append(
            f'<g class="series" fill="{color}" fill-opacity="0.75" '
            f'data-request="{escape(label)}">{dots}</g>'
        )
    parts.extend(frame.threshold_marks(shown))
    far = [line.label for line in thresholds if line not in shown]
    if far:
        parts.append(
            f'<text x="{WIDTH - 16}" y="16" text-anchor="end" class="off-scale">'
            f"↑ {escape(', '.join(far))} above the scale</text>"
        )
    if not values:
        parts.append(frame.empty())
    for index, (label, _) in enumerate(groups):
        x = LEFT + (index % 3) * (WIDTH - LEFT) / 3
        y = HEIGHT + (index // 3) * LEGEND_ROW + 10
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<circle cx="{x + 4:.1f}" cy="{y - 4}" r="4" fill="{color}"/>'
            f'<text x="{x + 12:.1f}" y="{y}" class="tick">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def heatmap_chart(
    title: str,
    heatmap: Heatmap,
    *,
    x_end: float | None = None,
    css_class: str = "chart heatmap",
) -> str:
    """Requests per latency band and time: darker cells hold more requests (log scale)."""
    rows = len(heatmap.bands)
    height = max(HEIGHT, TOP + 30 + rows * 18)
    xs = [x for column in heatmap.columns for x in column]
    # The value axis is the bands' edges: row i spans edges i to i + 1.
    edges = [low for low, _ in heatmap.bands] + [heatmap.bands[-1][1]] if rows else [0.0, 1.0]
    frame = time_frame(
        title, xs, x_end, [float(i) for i in range(len(edges))], height=height,
        fmt=lambda index: _ms(edges[min(int(index), len(edges) - 1)]) if rows else "",
    )
    parts = frame.open(css_class)
    peak = heatmap.peak
    for band, counts in enumerate(heatmap.counts):
        y_top, y_bottom = frame.sy(band + 1), frame.sy(band)
        for column, count in enumerate(counts):
            if count <= 0:
                continue
            start, end = heatmap.columns[column]
            x = frame.sx(start)
            width = max(frame.sx(end) - x, 1.0)
            shade = 0.15 + 0.85 * math.log1p(count) / math.log1p(peak)
            low, high = heatmap.bands[band]
            parts.append(
                f'<rect class="cell" x="{x:.1f}" y="{y_top:.1f}" width="{width:.1f}" '
                f'height="{y_bottom - y_top:.1f}" fill-opacity="{shade:.2f}">'
                f"<title>{escape(elapsed_label(start))}–{escape(elapsed_label(end))}: "
                f"{count:,} requests {escape(_ms(low))}–{escape(_ms(high))}</title></rect>"
            )
    if not heatmap.counts:
        parts.append(frame.empty())
    parts.append("</svg>")
    legend = (
        f'<p class="sub">Requests per latency band (rows, ms) and time: the darkest cell holds '
        f"{peak:,} requests, shades on a log scale.</p>"
    )
    return "\n".join(parts) + legend


def _ms(value: float) -> str:
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:g} ms"
