"""Small terminal charts in Unicode blocks: a sparkline and a multi-row bar chart.

No plotting dependency: eighth-blocks (`▁▂▃▄▅▆▇█`) give each column 8 steps per row, which
is enough to see a ramp-up, a plateau and a spike in RPS, p95 or users over a run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from loadmgr.models.axis import MISSING, resample
from loadmgr.models.axis import finite_or_none as _finite
from loadmgr.models.axis import finite_values as _known

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

    from loadmgr.models.axis import ThresholdLine

BLOCKS = " ▁▂▃▄▅▆▇█"


def chart_floor(low: float, high: float) -> float:
    """Where the bars start: zero, unless every value sits high above it.

    Five rows give 40 steps; a p95 moving between 125 and 149 ms would be one step on a
    zero-based scale. When the lowest value is above half the highest, the scale starts a
    little below it instead, and the axis label says so.
    """
    if low <= 0 or high <= low or low < high / 2:
        return 0.0
    return max(0.0, low - (high - low) / 2)


def labelled_ticks(
    low: float, high: float, height: int, fmt: Callable[[float], str]
) -> list[float]:
    """Round ticks for `height` rows from `chart_floor` up to `high`; from zero when their
    labels would not tell them apart (`14.3/s` on every row over 14.28..14.30): bars that
    look alike then, as the numbers do."""
    from loadmgr.models.axis import row_ticks

    ticks = row_ticks(chart_floor(low, high), high, height)
    if len({fmt(tick) for tick in ticks}) < len(ticks):
        ticks = row_ticks(0.0, high, height)
    return ticks


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


def place_by_time(
    points: Sequence[tuple[float, float | None]], end: float, width: int
) -> list[float | None]:
    """Values over their windows: `width` columns spanning 0..`end` seconds from the run's
    start.

    A point is an interval's value at the interval's end; it is drawn over the interval's
    whole window (`interval_windows`), as a step, never as a point at its end. A column
    takes the mean of the windows it overlaps, weighted by the overlap; columns no window
    covers (before the first interval, a hole, after the last) stay unknown.
    """
    from loadmgr.models.axis import interval_windows

    if width < 1 or not points or end <= 0:
        return [None] * max(0, width)
    ordered = sorted(((x, v) for x, v in points if math.isfinite(x) and x >= 0), key=lambda p: p[0])
    windows = interval_windows([x for x, _ in ordered])
    columns: list[float | None] = []
    for column in range(width):
        left, right = column * end / width, (column + 1) * end / width
        weight = total = 0.0
        for (start, stop), (_, value) in zip(windows, ordered, strict=True):
            known = _finite(value)
            overlap = min(right, stop) - max(left, start)
            if known is not None and overlap > 1e-9 * end:
                weight += overlap
                total += overlap * known
        columns.append(total / weight if weight else None)
    return columns


def row_labels(
    ticks: Sequence[float], height: int, fmt: Callable[[float], str]
) -> tuple[list[str], str]:
    """The value axis of `row_ticks`: each tick's label on the row whose top edge it is
    (top row first), and the lowest tick's label, which goes on the time axis line."""
    labels = [""] * height
    intervals = max(1, len(ticks) - 1)
    for index, tick in enumerate(ticks[1:], start=1):
        row = height - round(index * height / intervals)
        if 0 <= row < height:
            labels[row] = fmt(tick)
    return labels, fmt(ticks[0])


def time_axis(
    end: float, width: int, label_width: int, bottom_label: str = ""
) -> list[RenderableType]:
    """Two lines under a chart: the axis (with the value axis' lowest tick on its left and
    a mark at each time tick) and the ticks' elapsed times (`0:00  1:00  2:00`), from the
    run's start to its end."""
    from rich.text import Text

    from loadmgr.models.axis import elapsed_label, time_ticks

    axis = ["─"] * width
    labels = [" "] * (width + 8)
    free_from = 0
    # One label per 10 columns at most, so that labels never run into each other.
    for tick in time_ticks(end, target=max(2, min(6, width // 10))):
        column = min(width - 1, round(tick / end * width)) if end > 0 else 0
        axis[column] = "┬"
        text = elapsed_label(tick)
        at = max(0, min(column - len(text) // 2, width - len(text)) if column else 0)
        if at >= free_from:
            labels[at : at + len(text)] = text
            free_from = at + len(text) + 1
    return [
        Text(f"{bottom_label:>{label_width}} └" + "".join(axis), style="dim"),
        Text(" " * (label_width + 2) + "".join(labels).rstrip(), style="dim"),
    ]


def threshold_row(value: float, top: float, bottom: float, height: int) -> int:
    """The row (from the top) whose span of values holds a threshold's value (a value on a
    row edge belongs to the row below the edge, whose top edge is labelled with it)."""
    span = (top - bottom) or 1.0
    level = max(0.0, min(1.0, (value - bottom) / span)) * height
    return min(height - 1, max(0, height - math.ceil(level - 1e-9)))


def on_scale(value: float, top: float, bottom: float) -> bool:
    """Whether a threshold's value lies within the chart's scale (a row can hold it)."""
    slack = 1e-9 * max(1.0, abs(top), abs(bottom))
    return bottom - slack <= value <= top + slack


def off_scale_note(lines: Sequence[ThresholdLine], top: float, bottom: float) -> str:
    """`  ↓ p95<100ms below the scale`: thresholds no row can hold are named in the chart's
    head, never drawn on its top or bottom row beside a value they are far from."""
    notes = [
        f"{'↑' if line.value > top else '↓'} {line.label} "
        f"{'above' if line.value > top else 'below'} the scale"
        for line in lines
        if not on_scale(line.value, top, bottom)
    ]
    return "".join(f"  {note}" for note in notes)


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
    times: Sequence[float] | None = None,
    end: float | None = None,
    thresholds: Sequence[ThresholdLine] = (),
    tick_fmt: Callable[[float], str] | None = None,
    label_width: int = 0,
    mark_width: int = 0,
    from_zero: bool = False,
) -> RenderableType:
    """A titled bar chart with round ticks on the left and the time span underneath.

    With `times` (each value's seconds from the run's start) and `end` (the run's length)
    the columns are placed by time and the axis shows elapsed time from 0 to `end`;
    otherwise values are spread evenly and `start_label`/`end_label` name the span.
    `thresholds` are drawn as a red dashed line at their value, labelled on the right.
    The value axis has a round (1-2-5) value on every row edge; `label_width` and
    `mark_width` (at least this many columns left and right of the bars) line up the time
    axes of charts shown one under another. With `from_zero` the bars always rise from 0
    (rates and users: a bar's height is its value); otherwise the scale may start above 0
    (`chart_floor`), and a threshold below it is named in the head, not drawn.
    """
    from rich.console import Group
    from rich.text import Text

    known = _known(values)
    head = Text(title, style="bold")
    if known:
        latest = next(v for v in reversed([_finite(v) for v in values]) if v is not None)
        head.append(
            f"  min {fmt(min(known))}  max {fmt(max(known))}  last {fmt(latest)}", style="dim"
        )
    else:
        head.append("  no data", style="dim")
    high = max([*known, *(line.value for line in thresholds), 0.0])
    low = 0.0 if from_zero or not known else min(known)
    ticks = labelled_ticks(low, high, height, tick_fmt or fmt)
    bottom, top = ticks[0], ticks[-1]
    head.append(off_scale_note(thresholds, top, bottom), style="red")
    thresholds = [line for line in thresholds if on_scale(line.value, top, bottom)]
    labels, bottom_label = row_labels(ticks, height, tick_fmt or fmt)
    label_width = max(label_width, len(bottom_label), *(len(label) for label in labels))
    marks = [f" {line.label}" for line in thresholds]
    mark_width = max(mark_width, *(len(mark) for mark in marks)) if marks else mark_width
    plot_width = max(10, width - label_width - 2 - mark_width)
    if times is not None and end:
        end = max(end, *times) if times else end
        columns = place_by_time(list(zip(times, values, strict=False)), end, plot_width)
    else:
        columns = resample(values, plot_width)
    dashed: list[set[int]] = [set() for _ in range(height)]
    tails = [Text("") for _ in range(height)]
    for line, mark in zip(thresholds, marks, strict=True):
        at = threshold_row(line.value, top, bottom, height)
        dashed[at].update(range(len(columns)))
        tails[at].append(mark, style="red")
    rows = [
        _styled_row(chars, style, dashed[index])
        for index, chars in enumerate(bar_rows(columns, height, top, bottom))
    ]
    lines: list[RenderableType] = [head]
    for label, chars, tail in zip(labels, rows, tails, strict=True):
        text = Text(f"{label:>{label_width}} ┤", style="dim")
        text.append_text(chars)
        text.append_text(tail)
        lines.append(text)
    if times is not None and end:
        lines.extend(time_axis(end, len(columns), label_width, bottom_label))
    else:
        lines.append(Text(f"{bottom_label:>{label_width}} └" + "─" * len(columns), style="dim"))
        if start_label or end_label:
            gap = max(1, len(columns) - len(start_label) - len(end_label))
            lines.append(
                Text(" " * (label_width + 2) + start_label + " " * gap + end_label, style="dim")
            )
    return Group(*lines)


def _styled_row(chars: str, style: str, dashed: set[int]) -> Text:
    """A chart row: bars in `style`, a threshold's dashes (blank cells of `dashed`) in red."""
    from rich.text import Text

    text = Text()
    for index, char in enumerate(chars):
        if index in dashed and char == " ":
            text.append("╌", style="red")
        else:
            text.append(char, style=style)
    return text


def chart_width() -> int:
    """Charts take the terminal's whole width; 100 columns when stdout is not a terminal."""
    import sys

    from loadmgr.cli.output import stdout_console

    return max(40, stdout_console().width) if sys.stdout.isatty() else 100
