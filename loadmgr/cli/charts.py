"""Small terminal charts in Unicode blocks: a sparkline and a multi-row bar chart.

No plotting dependency: eighth-blocks (`▁▂▃▄▅▆▇█`) give each column 8 steps per row, which
is enough to see a ramp-up, a plateau and a spike in RPS, p95 or users over a run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType

BLOCKS = " ▁▂▃▄▅▆▇█"
SPARKS = "▁▂▃▄▅▆▇█"
MISSING = "·"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _known(values: Sequence[float | None]) -> list[float]:
    return [v for v in map(_finite, values) if v is not None]


def resample(values: Sequence[float | None], width: int) -> list[float | None]:
    """`values` fitted to `width` columns: merged by mean when too many, repeated when few.

    A column whose values are all unknown stays unknown (drawn as a gap), so a hole in the
    data is not drawn as a zero.
    """
    if width < 1 or not values:
        return []
    count = len(values)
    if count <= width:
        repeat = max(1, width // count)
        return [v for v in values for _ in range(repeat)]
    columns: list[float | None] = []
    for column in range(width):
        start, end = column * count // width, (column + 1) * count // width
        known = _known(values[start:end])
        columns.append(sum(known) / len(known) if known else None)
    return columns


def sparkline(values: Sequence[float | None], width: int | None = None) -> str:
    """One line of blocks, lowest value to highest; `·` where a value is unknown."""
    data = resample(values, width or len(values)) if values else []
    known = _known(data)
    if not known:
        return MISSING * len(data)
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    line = []
    for value in map(_finite, data):
        if value is None:
            line.append(MISSING)
        else:
            line.append(SPARKS[round((value - low) / span * (len(SPARKS) - 1))])
    return "".join(line)


def chart_floor(low: float, high: float) -> float:
    """Where the bars start: zero, unless every value sits high above it.

    Five rows give 40 steps; a p95 moving between 125 and 149 ms would be one step on a
    zero-based scale. When the lowest value is above half the highest, the scale starts a
    little below it instead, and the axis label says so.
    """
    if low <= 0 or high <= low or low < high / 2:
        return 0.0
    return max(0.0, low - (high - low) / 2)


def bar_rows(
    values: Sequence[float | None], height: int, top: float, bottom: float = 0.0
) -> list[str]:
    """The chart as `height` strings, top row first; each column rises from `bottom` to
    its value in eighths of a row. Unknown values are a `·` on the bottom row."""
    rows: list[list[str]] = [[] for _ in range(height)]
    span = top - bottom
    for value in values:
        known = _finite(value)
        levels = (
            0 if known is None or span <= 0 else round(max(0.0, known - bottom) / span * height * 8)
        )
        for row in range(height):
            filled = min(8, max(0, levels - (height - 1 - row) * 8))
            char = BLOCKS[filled]
            if known is None and row == height - 1:
                char = MISSING
            rows[row].append(char)
    return ["".join(row) for row in rows]


def block_chart(
    title: str,
    values: Sequence[float | None],
    *,
    width: int = 60,
    height: int = 5,
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    start_label: str = "",
    end_label: str = "",
    style: str = "cyan",
) -> RenderableType:
    """A titled bar chart with its scale on the left and the time span underneath."""
    from rich.console import Group
    from rich.text import Text

    known = _known(values)
    top = max(known) if known else 0.0
    head = Text(title, style="bold")
    if known:
        latest = next(v for v in reversed([_finite(v) for v in values]) if v is not None)
        head.append(f"  min {fmt(min(known))}  max {fmt(top)}  last {fmt(latest)}", style="dim")
    else:
        head.append("  no data", style="dim")
    bottom = chart_floor(min(known), top) if known else 0.0
    labels = [fmt(top) if known else "", *([""] * (height - 2)), fmt(bottom)]
    label_width = max(len(label) for label in labels)
    plot_width = max(10, width - label_width - 2)
    columns = resample(values, plot_width)
    lines = [head]
    for label, row in zip(labels, bar_rows(columns, height, top, bottom), strict=False):
        line = Text(f"{label:>{label_width}} ┤", style="dim")
        line.append(row, style=style)
        lines.append(line)
    axis = Text(" " * label_width + " └" + "─" * len(columns), style="dim")
    lines.append(axis)
    if start_label or end_label:
        gap = max(1, len(columns) - len(start_label) - len(end_label))
        lines.append(
            Text(" " * (label_width + 2) + start_label + " " * gap + end_label, style="dim")
        )
    return Group(*lines)
