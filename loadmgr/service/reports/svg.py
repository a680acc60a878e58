"""Line charts as inline SVG text, for the self-contained HTML report.

Drawn here rather than by a JavaScript library so the report opens with no network and
no scripts. The SVG is inline in HTML5, so it needs no `xmlns` (which would be the only
`http://` in the file). Every label is escaped: data never becomes markup.

Charts take the page's width (`width="100%"` over a fixed viewBox), their value axis has
round 1-2-5 ticks and their time axis runs from the run's start to its end in clock steps
(`loadmgr.models.axis`); a run's thresholds are dashed lines on the chart of their metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from loadmgr.models.axis import (
    ThresholdLine,
    elapsed_label,
    interval_windows,
    nice_ticks,
    tick_label,
    time_ticks,
)

__all__ = ["Frame", "elapsed_label", "line_chart", "nice_ceiling"]

WIDTH, HEIGHT = 960, 240
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


@dataclass
class Frame:
    """A chart's plot area and axes: x in seconds from `x0` over `span`, y over the ticks."""

    title: str
    x0: float
    span: float
    y_ticks: list[float]
    fmt: Callable[[float], str] | None = None
    unit: str = ""
    height: int = HEIGHT
    below: int = 0  # room under the time axis (a legend)

    @property
    def plot_w(self) -> float:
        return WIDTH - LEFT - RIGHT

    @property
    def plot_h(self) -> float:
        return self.height - TOP - BOTTOM

    def sx(self, x: float) -> float:
        return LEFT + (x - self.x0) / max(self.span, 1e-9) * self.plot_w

    def sy(self, y: float) -> float:
        low, high = self.y_ticks[0], self.y_ticks[-1]
        clamped = min(max(y, low), high)
        return TOP + self.plot_h - (clamped - low) / ((high - low) or 1.0) * self.plot_h

    def label(self, value: float) -> str:
        return self.fmt(value) if self.fmt else tick_label(value, self.y_ticks, self.unit)

    def open(self, css_class: str) -> list[str]:
        """The SVG's opening, title, grid, value ticks and elapsed-time ticks."""
        parts = [
            f'<svg class="{escape(css_class)}" viewBox="0 0 {WIDTH} {self.height + self.below}" '
            f'width="100%" preserveAspectRatio="xMidYMid meet" role="img" '
            f'aria-label="{escape(self.title)}">',
            f"<title>{escape(self.title)}</title>",
            f'<text x="{LEFT}" y="16" class="chart-title">{escape(self.title)}</text>',
        ]
        for value in self.y_ticks:
            y = self.sy(value)
            parts.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>'
            )
            parts.append(
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                f"{escape(self.label(value))}</text>"
            )
        bottom = TOP + self.plot_h
        for offset in time_ticks(self.span):
            x = self.sx(self.x0 + offset)
            anchor = "start" if offset == 0 else "middle"
            parts.append(
                f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" class="grid"/>'
                f'<text x="{x:.1f}" y="{self.height - 8}" text-anchor="{anchor}" class="tick">'
                f"{escape(elapsed_label(offset))}</text>"
            )
        return parts

    def threshold_marks(self, lines: Sequence[ThresholdLine]) -> list[str]:
        """Each threshold as a dashed line at its value, its expression at the right end."""
        parts = []
        for line in lines:
            y = self.sy(line.value)
            parts.append(
                f'<g class="threshold" data-threshold="{escape(line.label)}" '
                f'data-value="{line.value:g}">'
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
                f'<text x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end">'
                f"{escape(line.label)}</text></g>"
            )
        return parts

    def empty(self) -> str:
        return (
            f'<text x="{LEFT + self.plot_w / 2:.1f}" y="{TOP + self.plot_h / 2:.1f}" '
            'text-anchor="middle" class="empty">no data</text>'
        )


def value_ticks(values: Sequence[float], lines: Sequence[ThresholdLine] = ()) -> list[float]:
    """Round ticks from 0 to the highest value or threshold, whichever is higher."""
    top = max([*values, *(line.value for line in lines), 0.0])
    return nice_ticks(0.0, top)


def time_frame(
    title: str,
    xs: Sequence[float],
    x_end: float | None,
    y_ticks: list[float],
    **options: object,
) -> Frame:
    """A frame from the run's start (0 s) to `x_end`; without it, over the points' own span."""
    if x_end is not None:
        x0, span = 0.0, max(x_end, max(xs, default=0.0), 1e-9)
    else:
        x0 = min(xs, default=0.0)
        span = max(max(xs, default=0.0) - x0, 1e-9)
    return Frame(title, x0, span, y_ticks, **options)  # type: ignore[arg-type]


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


def _step_segments(
    points: Sequence[tuple[float, float | None]],
) -> list[list[tuple[float, float]]]:
    """The corners of each interval's step over its window; windows that follow each other
    join (a vertical rise between them), an unknown value or a hole breaks the line."""
    # By time alone: two intervals of one window (a duplicate stored by anyone), one of
    # them unknown, must not be compared by value (None < 1.0 is an error).
    ordered = sorted(
        ((x, y) for x, y in points if math.isfinite(x) and x >= 0), key=lambda point: point[0]
    )
    segments: list[list[tuple[float, float]]] = [[]]
    last_stop: float | None = None
    for (start, stop), (_, y) in zip(interval_windows([x for x, _ in ordered]), ordered,
                                     strict=True):
        if y is None or not math.isfinite(y) or (last_stop is not None and start > last_stop):
            if segments[-1]:
                segments.append([])
        if y is not None and math.isfinite(y):
            segments[-1] += [(start, y), (stop, y)]
        last_stop = stop
    return [s for s in segments if s]


def line_chart(
    title: str,
    points: Sequence[tuple[float, float | None]],
    *,
    fmt: Callable[[float], str] | None = None,
    color: str = "#2563eb",
    css_class: str = "chart",
    x_end: float | None = None,
    thresholds: Sequence[ThresholdLine] = (),
    unit: str = "",
    steps: bool = False,
) -> str:
    """One chart: `points` are (seconds since start, value or None).

    With `steps`, each point is an interval's value at its window's end and is drawn as a
    flat step over the whole window (`interval_windows`), from the window's start.

    With `x_end` (the run's length) the time axis runs from 0 to it, so charts of one run
    line up; `thresholds` are drawn across it; tick labels get `unit` unless `fmt` is given.
    """
    known = [y for _, y in points if y is not None and math.isfinite(y)]
    frame = time_frame(
        title, [0.0, *(x for x, _ in points)] if steps else [x for x, _ in points], x_end,
        value_ticks(known, thresholds), fmt=fmt, unit=unit,
    )
    parts = frame.open(css_class)
    for segment in _step_segments(points) if steps else _segments(points):
        if len(segment) == 1:
            x, y = segment[0]
            parts.append(
                f'<circle cx="{frame.sx(x):.1f}" cy="{frame.sy(y):.1f}" r="2.5" fill="{color}"/>'
            )
            continue
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{frame.sx(x):.1f},{frame.sy(y):.1f}"
            for i, (x, y) in enumerate(segment)
        )
        parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.8"/>')
    parts.extend(frame.threshold_marks(thresholds))
    if not known:
        parts.append(frame.empty())
    parts.append("</svg>")
    return "\n".join(parts)
