"""A dot plot in Braille characters: each cell holds 2×4 dots, so a 100-column terminal
draws 200 points across, enough to see single outliers and two bands of latency.

Used by `metrics show --view scatter`: one colour per request, the run's thresholds as red
dashed lines, round ticks and the elapsed-time axis of the other charts (`charts.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from loadmgr.cli.charts import off_scale_note, on_scale, row_labels, threshold_row, time_axis

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.text import Text

    from loadmgr.models.axis import ThresholdLine

BRAILLE = 0x2800
# The bit of each dot in a cell, by (column, row) within it (Unicode's Braille layout).
DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
STYLES = ("cyan", "magenta", "green", "yellow", "blue", "bright_magenta", "bright_green",
          "bright_cyan", "bright_yellow", "white")


def dot_cells(
    groups: Sequence[Sequence[tuple[float, float]]],
    *,
    columns: int,
    rows: int,
    end: float,
    bottom: float,
    top: float,
) -> dict[tuple[int, int], tuple[int, int]]:
    """(row, column) of each cell with dots -> (its Braille bits, the group drawn last in it).

    x runs from 0 to `end` seconds, y from `bottom` to `top` (values beyond are drawn at
    the edge, so an outlier is never dropped).
    """
    cells: dict[tuple[int, int], tuple[int, int]] = {}
    width, height = columns * 2, rows * 4
    span = (top - bottom) or 1.0
    for group, points in enumerate(groups):
        for x, y in points:
            dot_x = min(width - 1, max(0, int(x / end * width))) if end > 0 else 0
            level = (min(max(y, bottom), top) - bottom) / span
            dot_y = min(height - 1, max(0, round((1 - level) * (height - 1))))
            cell = (dot_y // 4, dot_x // 2)
            bits, _ = cells.get(cell, (0, group))
            cells[cell] = (bits | DOT_BITS[dot_x % 2][dot_y % 4], group)
    return cells


# Without colour (`NO_COLOR`, a pipe) a cell shows its group's mark instead of Braille
# dots, and the legend the same marks: requests stay distinguishable in black and white.
MARKS = "●○■□▲△◆◇+×"


class ScatterPlot:
    """The plot's lines, drawn with Braille in colour or with marks without it."""

    def __init__(
        self,
        head: Text,
        labels: list[str],
        cells: dict[tuple[int, int], tuple[int, int]],
        dashed: dict[int, str],
        columns: int,
        footer: list[RenderableType],
        legend: list[str],
    ) -> None:
        self.head, self.labels, self.cells, self.dashed = head, labels, cells, dashed
        self.columns, self.footer, self.legend = columns, footer, legend

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        plain = console.no_color or console.color_system is None
        width = max(map(len, self.labels), default=0)
        yield self.head
        for row, label in enumerate(self.labels):
            text = Text(f"{label:>{width}} ┤", style="dim")
            for column in range(self.columns):
                bits, group = self.cells.get((row, column), (0, 0))
                if bits:
                    char = MARKS[group % len(MARKS)] if plain else chr(BRAILLE + bits)
                    text.append(char, style=STYLES[group % len(STYLES)])
                elif row in self.dashed:
                    text.append("╌", style="red")
                else:
                    text.append(" ")
            if row in self.dashed:
                text.append(self.dashed[row], style="red")
            yield text
        yield from self.footer
        legend = Text(" " * (width + 2))
        for index, label in enumerate(self.legend):
            mark = MARKS[index % len(MARKS)] if plain else "●"
            legend.append(f"{mark} ", style=STYLES[index % len(STYLES)])
            legend.append(label + "   ")
        yield legend


def scatter_plot(
    title: str,
    groups: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    end: float,
    width: int = 80,
    height: int = 12,
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    thresholds: Sequence[ThresholdLine] = (),
) -> RenderableType:
    """`groups` are (label, [(seconds from the run's start, value)]), one colour each."""
    from rich.text import Text

    from loadmgr.models.axis import row_ticks, within_reach

    values = [y for _, points in groups for _, y in points]
    high = max([*values, *(line.value for line in within_reach(values, thresholds)), 0.0])
    # A tick every 2, 3 or 4 rows, whichever reaches least above the highest value.
    splits = [n for n in (6, 4, 3) if height % n == 0] or [height]
    ticks = min((row_ticks(0.0, high, n) for n in splits), key=lambda t: (t[-1], -len(t)))
    bottom, top = ticks[0], ticks[-1]
    labels, bottom_label = row_labels(ticks, height, fmt)
    label_width = max(len(bottom_label), *(len(label) for label in labels))
    shown = [line for line in thresholds if on_scale(line.value, top, bottom)]
    marks = [f" {line.label}" for line in shown]
    columns = max(10, width - label_width - 2 - max(map(len, marks), default=0))
    end = max(end, max((x for _, points in groups for x, _ in points), default=0.0))
    cells = dot_cells(
        [points for _, points in groups], columns=columns, rows=height, end=end,
        bottom=bottom, top=top,
    )
    dashed: dict[int, str] = {}
    for line, mark in zip(shown, marks, strict=True):
        row = threshold_row(line.value, top, bottom, height)
        dashed[row] = dashed.get(row, "") + mark
    head = Text(title, style="bold")
    if not values:
        head.append("  no data", style="dim")
    head.append(off_scale_note(thresholds, top, bottom), style="red")
    return ScatterPlot(
        head, [f"{label:>{label_width}}" for label in labels], cells, dashed, columns,
        time_axis(end, columns, label_width, bottom_label), [label for label, _ in groups],
    )
