"""Tables that fit the terminal: ids cut to their short form, text folded, headers whole.

A table wider than the terminal is first laid out tight (short ids, one space between
columns, text columns folded down to their header's longest word); the columns that still
do not fit are left out from the right, and a line under the table names them: a header
split mid-word (`STATU`/`S`) can be read by nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from loadmgr.cli.output import Column


def fitted_table(
    console: Console, columns: Sequence[Column], rows: list[list[str]], title: str | None
) -> Table:
    """The table of `rows` (cells as text), fitted to the terminal when it is one."""
    table = _table(columns, rows, title)
    if not console.is_terminal or _natural_width(console, table) <= console.width:
        return table
    rows = [_shortened(columns, row) for row in rows]
    kept = len(columns)
    widths = _fitted_widths(columns, rows, console.width)
    while kept > 1 and sum(widths) + kept - 1 > console.width:
        kept -= 1
        widths = _fitted_widths(columns[:kept], rows, console.width)
    table = _table(columns[:kept], [row[:kept] for row in rows], title, widths)
    if kept < len(columns):
        table.caption = (
            f"not shown at {console.width} columns: "
            + ", ".join(column.header for column in columns[kept:])
            + " (a wider terminal, or -o json)"
        )
        table.caption_justify = "left"
    return table


def _table(
    columns: Sequence[Column],
    rows: list[list[str]],
    title: str | None,
    widths: Sequence[int] | None = None,
) -> Table:
    """The table; with `widths` (a terminal too narrow for it) each column is that wide
    and one space apart instead of two: room for every header word at 60 columns."""
    tight = widths is not None
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=title, box=None, header_style="bold", pad_edge=False,
        padding=(0, 1, 0, 0) if tight else (0, 1),
    )
    for index, column in enumerate(columns):
        table.add_column(
            column.header,
            width=None if widths is None else widths[index],
            justify=column.justify,  # type: ignore[arg-type]
            overflow="fold",
            no_wrap=column.no_wrap or column.justify == "right",
            # A header is never split mid-word (`STATU`/`S`): its longest word fits.
            min_width=max(map(len, column.header.split()), default=0),
        )
    for row in rows:
        table.add_row(*(Text(value) for value in row))
    return table


def _shortened(columns: Sequence[Column], row: list[str]) -> list[str]:
    return [
        value[: column.short] if column.short and value != "-" else value
        for column, value in zip(columns, row, strict=True)
    ]


def _natural_width(console: Console, table: Table) -> int:
    """What the table needs to print without folding a cell."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update_width(100_000), table).maximum


def _fitted_widths(columns: Sequence[Column], rows: list[list[str]], width: int) -> list[int]:
    """Column widths within `width` (one space apart), or wider when it cannot be done:
    numbers and short ids keep their whole width, text columns fold down to no less than
    their header's longest word, and the room left goes to the text cut most."""
    least, most = [], []
    for index, column in enumerate(columns):
        natural = max([len(column.header), *(len(row[index]) for row in rows)])
        fixed = column.no_wrap or column.justify == "right" or bool(column.short)
        least.append(natural if fixed else max(map(len, column.header.split()), default=1))
        most.append(natural)
    widths = list(least)
    room = width - (len(columns) - 1) - sum(widths)
    while room > 0 and any(w < m for w, m in zip(widths, most, strict=True)):
        index = max(range(len(widths)), key=lambda i: most[i] - widths[i])
        widths[index] += 1
        room -= 1
    return widths
