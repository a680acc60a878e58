"""Round axis ticks, shared by the terminal charts and the SVG of the HTML report; and
sparklines, shared by the terminal charts and the Markdown summary.

Values get 1-2-5 steps (0, 20, 40… or 0, 0.5, 1…): the ticks a person would draw. Elapsed
time gets clock steps instead (10 s, 30 s, 1 min, 5 min, 15 min, 1 h…), since "0:50, 1:40"
reads worse than "0:00, 1:00, 2:00", and is labelled `m:ss` or `h:mm:ss` from the run's start.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from loadmgr.models.thresholds import parse_threshold

MIN_TICKS, MAX_TICKS = 3, 10

# Clock steps in seconds, smallest first; past the last, whole multiples of a day.
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
              43200, 86400)


def _ticks_with(step: float, low: float, high: float) -> list[float]:
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    # Rounded so 0.1 × 3 prints as 0.3, not 0.30000000000000004.
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return [round(i * step, digits) for i in range(first, last + 1)]


def _flat(low: float, high: float) -> bool:
    """Too narrow a range to divide (or equal ends): beyond float precision for ticks."""
    return high - low <= 1e-9 * max(1.0, abs(low), abs(high))


def _divisible(low: float, high: float) -> tuple[float, float]:
    """The range an axis shows: in order, reaching to 0 when flat, 0 to 1 when empty."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return 0.0, 1.0
    low, high = min(low, high), max(low, high)
    if _flat(low, high):
        low, high = min(0.0, low), max(0.0, high)
    return (low, low + 1.0) if _flat(low, high) else (low, high)


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Ticks at a 1, 2 or 5 × 10^k step from at or below `low` to at or above `high`:
    3 to 10 of them, as near `target` as a round step allows (the larger step on a tie).
    A flat range reaches down to 0 (or up to it); an empty one is 0 to 1."""
    low, high = _divisible(low, high)
    power = math.floor(math.log10(high - low))
    best: list[float] = []
    for exponent in range(power + 1, power - 3, -1):
        for factor in (5.0, 2.0, 1.0):
            ticks = _ticks_with(factor * 10.0**exponent, low, high)
            if MIN_TICKS <= len(ticks) <= MAX_TICKS and (
                not best or abs(len(ticks) - target) < abs(len(best) - target)
            ):
                best = ticks
    return best


def time_ticks(end: float, target: int = 6) -> list[float]:
    """Ticks in seconds from 0 up to `end` (never past it: the axis ends with the run), at
    the smallest clock step (10 s, 1 min, 5 min…) that gives at most `target` of them."""
    end = end if math.isfinite(end) and end > 0 else 1.0
    step = float(TIME_STEPS[-1])
    for candidate in TIME_STEPS:
        if math.floor(end / candidate + 1e-9) + 1 <= max(MIN_TICKS, target):
            step = float(candidate)
            break
    else:
        while math.floor(end / step + 1e-9) + 1 > MAX_TICKS:
            step += 86400.0
    return [i * step for i in range(math.floor(end / step + 1e-9) + 1)]


def elapsed_label(seconds: float) -> str:
    """`1:05:00` or `5:00`: time since the run started."""
    total = int(round(max(0.0, seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class ThresholdLine:
    """A run's threshold drawn across the chart of its metric: at `value` (in the chart's
    unit: ms, requests/s, or a 0–1 error rate), labelled with its expression."""

    value: float
    label: str
    request: str | None = None  # "METHOD name" of a scoped threshold; None: the whole run


# A scatter's scale reaches a threshold up to this many times its highest point; one further
# off is named as off the scale, so the dots keep the plot's height (terminal and HTML).
THRESHOLD_REACH = 2.0


def within_reach(values: Sequence[float], lines: Sequence[ThresholdLine]) -> list[ThresholdLine]:
    """The thresholds a scatter's scale stretches to show: all of them without points."""
    reach = THRESHOLD_REACH * max(values) if values else math.inf
    return [line for line in lines if line.value <= reach]


def threshold_lines(
    expressions: Iterable[str], metric: str, request: tuple[str, str] | None = None
) -> list[ThresholdLine]:
    """The lines of `metric`'s thresholds: the run's unscoped ones, and with `request`
    (method, name) those scoped to it (by `METHOD name` or the name alone, as they are
    judged). Expressions that do not parse are left out: a chart never fails on them."""
    lines = []
    for expression in expressions:
        try:
            threshold = parse_threshold(expression)
        except ValueError:
            continue
        if threshold.metric != metric:
            continue
        if threshold.scope is None:
            lines.append(ThresholdLine(threshold.limit, threshold.expression))
        elif request is not None and threshold.scope in (f"{request[0]} {request[1]}", request[1]):
            lines.append(
                ThresholdLine(threshold.limit, threshold.expression, f"{request[0]} {request[1]}")
            )
    return lines


def tick_decimals(ticks: list[float]) -> int:
    """Decimals that tell ticks apart: 0 for steps of 1 or more, 1 for 0.5, 2 for 0.05…"""
    if len(ticks) < 2:
        return 0
    step = abs(ticks[1] - ticks[0])
    return 0 if step >= 1 or step <= 0 else max(0, -math.floor(math.log10(step) + 1e-9))


def tick_label(value: float, ticks: list[float], unit: str = "") -> str:
    """`1,500`, `0.5`, `2.5%`: a tick as few digits as its neighbours need, with `unit`."""
    return f"{value:,.{tick_decimals(ticks)}f}{unit}"


def row_ticks(low: float, high: float, intervals: int) -> list[float]:
    """`intervals + 1` ticks at the smallest 1-2-5 step that covers `low`..`high` from a
    multiple of the step: a terminal chart of `intervals` rows (or groups of rows) then has
    a round value on every row edge."""
    intervals = max(1, intervals)
    low, high = _divisible(low, high)
    step = nice_step_at_least((high - low) / intervals)
    while True:
        first = math.floor(low / step + 1e-9) * step
        if first + intervals * step >= high * (1 - 1e-12) - 1e-12:
            break
        step = nice_step_at_least(step * 1.000001)
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return [round(first + i * step, digits) for i in range(intervals + 1)]


def nice_step_at_least(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above `value`."""
    power = 10.0 ** math.floor(math.log10(value))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if factor * power >= value * (1 - 1e-9):
            return factor * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def interval_windows(ends: Sequence[float]) -> list[tuple[float, float]]:
    """Each interval's window (start, end), in seconds from the run's start, from the ends
    the series rows carry: an interval measured the time since the one before it ended (the
    collector's windows follow each other), the first from the run's start. Where the gap
    to the previous end is over 1.5 times the usual one (an interval lost), the window is the
    usual length, so a hole in the data stays a hole. Charts draw a value over its window:
    a 10-s run's lines start at 0:00, not at the first interval's end.
    """
    gaps = sorted(b - a for a, b in zip(ends, ends[1:], strict=False) if b > a)
    usual = gaps[(len(gaps) - 1) // 2] if gaps else None
    windows = []
    previous = 0.0
    for end in ends:
        start = previous
        if usual is not None and end - start > 1.5 * usual:
            start = end - usual
        windows.append((min(start, end), end))
        previous = max(previous, end)
    return windows


# -- sparklines: the terminal charts and the Markdown summary (reports/markdown.py) ---

SPARKS = "▁▂▃▄▅▆▇█"
MISSING = "·"


def finite_or_none(value: float | None) -> float | None:
    """`value` when it is a finite number; None otherwise."""
    return value if value is not None and math.isfinite(value) else None


def finite_values(values: Sequence[float | None]) -> list[float]:
    """The finite numbers of `values`, in order."""
    return [v for v in map(finite_or_none, values) if v is not None]


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
        known = finite_values(values[start:end])
        columns.append(sum(known) / len(known) if known else None)
    return columns


def sparkline(values: Sequence[float | None], width: int | None = None) -> str:
    """One line of blocks, lowest value to highest; `·` where a value is unknown."""
    data = resample(values, width or len(values)) if values else []
    known = finite_values(data)
    if not known:
        return MISSING * len(data)
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    line = []
    for value in map(finite_or_none, data):
        if value is None:
            line.append(MISSING)
        else:
            line.append(SPARKS[round((value - low) / span * (len(SPARKS) - 1))])
    return "".join(line)
