"""Charts whose scales tell the truth (issue 20, item 15): a threshold is drawn on the row
that holds its value or named as off the scale, rates rise from 0, a far threshold does not
squash the scatter, legends read without colour, and each interval is drawn over its own
window, in the terminal and in the HTML report."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from loadmgr.cli.charts import block_chart, place_by_time
from loadmgr.cli.metrics.scatter import BRAILLE, MARKS, scatter_plot
from loadmgr.cli.metrics.views import timeseries_charts
from loadmgr.models.axis import ThresholdLine, interval_windows
from loadmgr.service.reports.svg import LEFT, line_chart


def _lines(renderable: Any, width: int = 100, colour: bool = False) -> list[str]:
    console = Console(width=width, record=True, color_system="standard" if colour else None)
    console.print(renderable)
    return console.export_text().splitlines()


def _number(label: str) -> float:
    return float(label.strip().rstrip("%").replace(",", ""))


values = st.lists(st.floats(min_value=0.5, max_value=1e4), min_size=1, max_size=30)


@given(values, st.floats(min_value=0.0, max_value=2e4))
def test_a_threshold_sits_on_the_row_holding_its_value_or_is_named_off_scale(
    series: list[float], limit: float
) -> None:
    label = "p95<LIMIT"
    lines = _lines(block_chart(
        "p95", series, width=80, fmt=lambda v: f"{v:.6g}",
        thresholds=[ThresholdLine(limit, label)],
    ))
    rows = [line for line in lines if "┤" in line]
    axis = next(line for line in lines if "└" in line)
    edges = [_number(row.split("┤")[0]) for row in rows] + [_number(axis.split("└")[0])]
    bottom, top = edges[-1], edges[0]
    drawn = [index for index, row in enumerate(rows) if label in row]
    slack = 1e-6 * max(1.0, top)  # labels have 6 digits; a value on an edge is on scale
    if bottom - slack <= limit <= top + slack:
        assert len(drawn) == 1, lines
        upper, lower = edges[drawn[0]], edges[drawn[0] + 1]
        assert lower - slack <= limit <= upper + slack, lines
    else:
        assert not drawn and "below the scale" in lines[0], lines


def test_the_off_scale_error_rate_threshold_is_not_beside_the_lowest_bar() -> None:
    chart = block_chart("p95", [125.0, 149.0, 131.0], width=60,
                        thresholds=[ThresholdLine(50.0, "p95<50ms")])
    lines = _lines(chart)
    assert "↓ p95<50ms below the scale" in lines[0]
    assert not any("p95<50ms" in line for line in lines[1:])


def test_rate_and_user_bars_start_at_zero() -> None:
    rows = [{"timestamp": None, "totalRPS": rps, "currentUsers": 5, "errorRate": 0.25,
             "p95ResponseMs": 120.0} for rps in (15.0, 18.0, 20.0, 16.0)]
    lines = _lines(timeseries_charts(rows, 80))
    axes = [line.split("└")[0].strip() for line in lines if "└" in line]
    rps, _p95, errors, users = axes
    assert _number(rps.rstrip("/s")) == 0 and _number(errors) == 0 and _number(users) == 0


def _dot_rows(lines: list[str]) -> set[int]:
    return {
        index for index, line in enumerate(lines)
        if "┤" in line and any(BRAILLE < ord(ch) <= BRAILLE + 0xFF for ch in line)
    }


def test_a_far_threshold_does_not_squash_the_scatter() -> None:
    points = [(float(t), 10.0 + (t % 7) * 3) for t in range(60)]
    lines = _lines(scatter_plot("p95", [("GET /", points)], end=60.0, width=80,
                                thresholds=[ThresholdLine(500.0, "p95<500ms")]), colour=True)
    assert len(_dot_rows(lines)) > 4, "\n".join(lines)
    assert "↑ p95<500ms above the scale" in lines[0]
    # A near one still gets its dashed line.
    near = _lines(scatter_plot("p95", [("GET /", points)], end=60.0, width=80,
                               thresholds=[ThresholdLine(40.0, "p95<40ms")]), colour=True)
    assert any("p95<40ms" in line and "╌" in line for line in near)


def test_the_scatter_legend_tells_requests_apart_without_colour() -> None:
    groups = [("GET /a", [(1.0, 10.0)]), ("GET /b", [(30.0, 900.0)]), ("POST /c", [(50.0, 5.0)])]
    lines = _lines(scatter_plot("p95", groups, end=60.0, width=60))
    legend = lines[-1]
    marks = [legend[m.start() - 2] for m in re.finditer(r"(GET|POST) /", legend)]
    assert marks == list(MARKS[:3])
    plot = "".join(line for line in lines if "┤" in line)
    assert all(mark in plot for mark in marks)


def test_each_interval_is_drawn_over_its_own_window_in_the_terminal() -> None:
    # A 10-s run, two 5-s intervals with 5 users each: users from 0:00 to 0:10.
    assert place_by_time([(5.0, 5.0), (10.0, 5.0)], 10.0, 10) == [5.0] * 10
    # A lost interval stays a hole.
    columns = place_by_time([(5.0, 1.0), (10.0, 2.0), (20.0, 4.0)], 20.0, 4)
    assert columns == [1.0, 2.0, None, 4.0]


def test_each_interval_is_a_step_over_its_window_in_html() -> None:
    svg = line_chart("Users", [(5.0, 5.0), (10.0, 5.0)], x_end=10.0, steps=True)
    path = re.search(r'<path d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    corners = [tuple(map(float, c.split(","))) for c in re.findall(r"[ML]([\d.,]+)", path)]
    assert corners[0][0] == LEFT  # from 0:00, not from the first interval's end
    assert len({y for _, y in corners}) == 1  # flat: 5 users all along
    rising = line_chart("RPS", [(5.0, 1.0), (10.0, 3.0)], x_end=10.0, steps=True)
    path = re.search(r'<path d="([^"]+)"', rising).group(1)  # type: ignore[union-attr]
    xs = [float(c.split(",")[0]) for c in re.findall(r"[ML]([\d.,]+)", path)]
    assert xs[1] == xs[2]  # the step rises at 0:05, where the second window starts


@given(st.lists(st.floats(min_value=0.0, max_value=1e5), max_size=40))
def test_interval_windows_cover_each_interval_up_to_its_end(raw: list[float]) -> None:
    ends = sorted(raw)
    windows = interval_windows(ends)
    assert [stop for _, stop in windows] == ends
    assert all(0 <= start <= stop for start, stop in windows)
    assert all(b[0] >= a[1] - 1e-9 for a, b in zip(windows, windows[1:], strict=False))


def test_a_far_threshold_does_not_squash_the_html_scatter() -> None:
    from loadmgr.service.reports.svg_plots import scatter_chart

    points = [(float(t), 10.0 + (t % 7) * 3) for t in range(60)]
    svg = scatter_chart("p95", [("GET /", points)], x_end=60.0,
                        thresholds=[ThresholdLine(500.0, "p95<500ms")])
    assert 'data-threshold="p95&lt;500ms"' not in svg
    assert "↑ p95&lt;500ms above the scale" in svg
    ticks = [float(t.replace(",", "").split()[0]) for t in
             re.findall(r'class="tick">([\d,.]+ ms)<', svg)]
    assert max(ticks) < 100
    near = scatter_chart("p95", [("GET /", points)], x_end=60.0,
                         thresholds=[ThresholdLine(40.0, "p95<40ms")])
    assert 'data-threshold="p95&lt;40ms"' in near
