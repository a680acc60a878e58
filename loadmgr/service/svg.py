"""Line charts as inline SVG text, for the self-contained HTML report.

Drawn here rather than by a JavaScript library so the report opens with no network and
no scripts. The SVG is inline in HTML5, so it needs no `xmlns` (which would be the only
`http://` in the file). Every label is escaped: data never becomes markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 30


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above `value` (a readable axis top)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def elapsed_label(seconds: float) -> str:
    """`1:05:00` or `5:00`: time since the run started."""
    total = int(round(max(0.0, seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Runs of known points; an unknown value breaks the line instead of dropping to 0."""
    segments: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None or not math.isfinite(y):
            if segments[-1]:
                segments.append([])
        else:
            segments[-1].append((x, y))
    return [s for s in segments if s]


def line_chart(
    title: str,
    points: Sequence[tuple[float, float | None]],
    *,
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    color: str = "#2563eb",
    css_class: str = "chart",
) -> str:
    """One chart: `points` are (seconds since start, value or None)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    known = [y for _, y in points if y is not None and math.isfinite(y)]
    top = nice_ceiling(max(known) if known else 0.0)
    span = max((points[-1][0] - points[0][0]) if points else 0.0, 1e-9)
    x0 = points[0][0] if points else 0.0

    def sx(x: float) -> float:
        return LEFT + (x - x0) / span * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - max(0.0, y) / top * plot_h

    parts = [
        f'<svg class="{escape(css_class)}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for i in range(5):
        value = top * i / 4
        y = sy(value)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{escape(fmt(value))}</text>"
        )
    if points:
        for fraction, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
            x = x0 + span * fraction
            parts.append(
                f'<text x="{sx(x):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" class="tick">'
                f"{escape(elapsed_label(x - x0))}</text>"
            )
    for segment in _segments(points):
        if len(segment) == 1:
            x, y = segment[0]
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"/>')
            continue
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(segment)
        )
        parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.8"/>')
    if not known:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" '
            'text-anchor="middle" class="empty">no data</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
