"""`metrics show --view server` on a terminal: a chart per server metric on the run's time
axis (the one the timeseries charts share), then one row per interval, then why values are
missing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loadmgr.cli.output import Column, sanitize
from loadmgr.models.formatting import format_number

if TYPE_CHECKING:
    from rich.console import RenderableType

    from loadmgr.service.server_metrics.readings import ServerSeries

MISSING = "missing"
# Distinct reasons named under the table per metric (the rest are counted).
REASONS_SHOWN = 3


def _label(series: ServerSeries) -> str:
    name = series.metric
    return f"{name} ({series.unit})" if series.unit else name


def server_view(
    rows: list[dict[str, Any]],
    width: int,
    *,
    end: float | None,
    thresholds: Sequence[str] = (),
    points: int,
) -> RenderableType:
    """Charts, the table of intervals (at most `points` rows, neighbours merged by their
    mean), and the reasons of the missing values."""
    from rich.console import Group
    from rich.text import Text

    from loadmgr.cli.charts import block_chart
    from loadmgr.cli.output import stdout_console
    from loadmgr.cli.tables import fitted_table
    from loadmgr.models.axis import threshold_lines
    from loadmgr.service.server_metrics.readings import server_series

    all_series = server_series(rows)
    known_end = end or max((t for s in all_series for t in s.times), default=0.0) or None
    marks = [len(expression) + 1 for expression in thresholds]
    parts: list[Any] = []
    for series in all_series:
        parts.append(
            block_chart(
                sanitize(_label(series), in_cell=True),
                series.values,
                width=width,
                fmt=format_number,
                style="yellow",
                times=series.times,
                end=known_end,
                thresholds=threshold_lines(thresholds, series.metric),
                label_width=8,
                mark_width=max(marks, default=0),
            )
        )
        parts.append(Text(""))
    columns, cells, merged = _table(rows, all_series, points)
    parts.append(fitted_table(stdout_console(), columns, cells, None))
    if merged > 1:
        parts.append(Text(f"each row merges up to {merged} intervals (their mean)", style="dim"))
    for series in all_series:
        if series.reasons:
            parts.append(Text(_reasons(series), style="yellow"))
    return Group(*parts)


def _table(
    rows: list[dict[str, Any]], all_series: list[ServerSeries], points: int
) -> tuple[list[Column], list[list[str]], int]:
    """One row per interval (or per `step` neighbouring intervals): elapsed time, then a
    cell per metric: its value, or `missing` (never a 0)."""
    count = len(all_series[0].values) if all_series else 0
    step = max(1, math.ceil(count / max(1, points)))
    columns = [Column("SEQ", lambda d: d, "right"), Column("ELAPSED", lambda d: d, "right")]
    columns += [
        Column(sanitize(_label(s), in_cell=True).upper(), lambda d: d, "right") for s in all_series
    ]
    seqs = [row["seq"] for row in rows[:: max(1, len(all_series))]]
    cells: list[list[str]] = []
    for start in range(0, count, step):
        elapsed = all_series[0].times[min(count, start + step) - 1]
        line = [str(seqs[start]), _elapsed(elapsed)]
        for series in all_series:
            known = [v for v in series.values[start : start + step] if v is not None]
            line.append(format_number(sum(known) / len(known)) if known else MISSING)
        cells.append(line)
    return columns, cells, step


def _elapsed(seconds: float) -> str:
    from loadmgr.models import format_duration

    return format_duration(seconds) if seconds >= 0 else "-"


def _reasons(series: ServerSeries) -> str:
    """`server.cpu: 3 intervals missing: cannot reach Prometheus at …`."""
    total = sum(series.reasons.values())
    ordered = sorted(series.reasons.items(), key=lambda item: -item[1])
    named = "; ".join(
        f"{sanitize(reason, in_cell=True)} ({n})" for reason, n in ordered[:REASONS_SHOWN]
    )
    more = f"; and {len(ordered) - REASONS_SHOWN} more" if len(ordered) > REASONS_SHOWN else ""
    return f"{series.metric}: {total} interval{'s' if total != 1 else ''} missing: {named}{more}"
