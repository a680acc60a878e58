"""Charts people can read: round ticks, the time axis, threshold lines, the scatter points
and the latency heatmap (pure functions, and the service on mongomock)."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

import mongomock
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from loadmgr.cli.charts import block_chart, place_by_time, row_labels, threshold_row
from loadmgr.cli.metrics.scatter import BRAILLE, dot_cells, scatter_plot
from loadmgr.models import Scope
from loadmgr.models.axis import (
    TIME_STEPS,
    ThresholdLine,
    elapsed_label,
    nice_ticks,
    row_ticks,
    threshold_lines,
    tick_label,
    time_ticks,
)
from loadmgr.models.histogram import decode, encode
from loadmgr.service.analysis import latency as latency_views
from loadmgr.service.analysis.latency import band_edges, heatmap_matrix
from loadmgr.service.reports import run_html as reports
from loadmgr.service.reports.svg import line_chart
from loadmgr.store import Store
from tests.metrics_data import START, make_run, make_test, plugin_snapshots, snapshots, store_all

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_subnormal=False)


def _is_125_step(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1.0, 2.0, 5.0, 10.0))


# -- ticks ---------------------------------------------------------------------------------


@given(finite, finite)
def test_ticks_are_round_steps_covering_the_range(a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    ticks = nice_ticks(low, high)
    assert 3 <= len(ticks) <= 10
    steps = {round(y - x, 9) for x, y in zip(ticks, ticks[1:], strict=False)}
    step = ticks[1] - ticks[0]
    assert step > 0 and _is_125_step(step)
    assert all(math.isclose(s, step, rel_tol=1e-6, abs_tol=1e-9) for s in steps)
    assert ticks[0] <= low + abs(step) * 1e-6 and ticks[-1] >= high - abs(step) * 1e-6
    assert all(math.isclose(t / step, round(t / step), abs_tol=1e-6) for t in ticks)
    if high - low > 1e-6 * max(1.0, abs(high)):  # a flat range reaches to 0; others are tight
        assert ticks[1] > low and ticks[-2] < high


@given(st.floats(min_value=0, max_value=1e7), st.integers(min_value=1, max_value=10))
def test_row_ticks_give_every_row_edge_a_round_value(high: float, rows: int) -> None:
    ticks = row_ticks(0.0, high, rows)
    assert len(ticks) == rows + 1 and ticks[0] == 0 and ticks[-1] >= high
    assert _is_125_step(ticks[1] - ticks[0])


@given(st.floats(min_value=0.5, max_value=3e6))
def test_time_ticks_are_clock_steps_from_the_start_to_the_end(end: float) -> None:
    ticks = time_ticks(end)
    assert ticks[0] == 0 and ticks[-1] <= end + 1e-6 and 1 <= len(ticks) <= 10
    if len(ticks) > 1:
        step = ticks[1] - ticks[0]
        assert step in TIME_STEPS or step % 86400 == 0
        assert ticks[-1] + step > end  # nothing left unlabelled at the end


def test_tick_labels_and_examples() -> None:
    assert nice_ticks(0, 120) == [0, 50, 100, 150]
    assert nice_ticks(0, 0.3) == [0, 0.1, 0.2, 0.3]
    assert nice_ticks(5, 5) == [0, 2, 4, 6]
    assert row_ticks(0, 800, 5) == [0, 200, 400, 600, 800, 1000]
    assert time_ticks(600) == [0, 120, 240, 360, 480, 600]
    assert time_ticks(3600) == [0, 900, 1800, 2700, 3600]
    assert [tick_label(t, [0, 0.5]) for t in (0, 0.5, 1500)] == ["0.0", "0.5", "1,500.0"]
    assert tick_label(2, [0, 2], " ms") == "2 ms"
    assert (elapsed_label(65), elapsed_label(3725)) == ("1:05", "1:02:05")


# -- thresholds ----------------------------------------------------------------------------


def test_threshold_lines_pick_the_metric_and_the_request() -> None:
    given_ = ["p95<=500ms", "p95<1s", "rps>=100", "error_rate<1%", "GET /a:p95<300ms",
              "/b:p95<200ms", "p99<2s", "not a threshold"]
    assert [(t.value, t.label) for t in threshold_lines(given_, "p95")] == [
        (500.0, "p95<=500ms"), (1000.0, "p95<1s"),
    ]
    scoped = threshold_lines(given_, "p95", ("GET", "/a"))
    assert [(t.value, t.request) for t in scoped] == [
        (500.0, None), (1000.0, None), (300.0, "GET /a"),
    ]
    assert [t.value for t in threshold_lines(given_, "p95", ("POST", "/b"))][-1] == 200.0
    assert threshold_lines(given_, "error_rate")[0].value == pytest.approx(0.01)
    assert threshold_lines(given_, "rps")[0].value == 100.0


def test_svg_threshold_line_sits_at_its_value() -> None:
    svg = line_chart(
        "p95", [(2.0, 100.0), (4.0, 300.0)], x_end=10.0,
        thresholds=[ThresholdLine(250.0, "p95<250ms")],
    )
    grid = {float(y): label for y, label in re.findall(
        r'<line x1="64" y1="([\d.]+)"[^>]*class="grid"/>\s*<text[^>]*>([^<]+)</text>', svg)}
    line_y = float(re.search(r'data-threshold="p95&lt;250ms" data-value="250">'
                             r'<line x1="64" y1="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    by_value = {float(label.replace(",", "")): y for y, label in grid.items()}
    # 250 lies halfway between the 200 and 300 grid lines.
    assert line_y == pytest.approx((by_value[200.0] + by_value[300.0]) / 2, abs=0.2)
    assert 'width="100%"' in svg and 'viewBox="0 0 ' in svg
    assert ">0:00<" in svg and ">0:10<" in svg  # the axis runs from the start to x_end


def test_terminal_threshold_row_and_labels() -> None:
    ticks = row_ticks(0, 100, 5)
    labels, bottom = row_labels(ticks, 5, lambda v: f"{v:g}")
    assert (labels, bottom) == (["100", "80", "60", "40", "20"], "0")
    assert threshold_row(40.0, 100.0, 0.0, 5) == 3  # the row (20, 40], labelled 40
    assert threshold_row(100.0, 100.0, 0.0, 5) == 0 and threshold_row(0.0, 100.0, 0.0, 5) == 4
    chart = block_chart(
        "RPS", [50.0, 60.0], times=[5.0, 10.0], end=10.0, width=40,
        thresholds=[ThresholdLine(80.0, "rps>=80")],
    )
    text = _plain(chart)
    row = next(line for line in text.splitlines() if "rps>=80" in line)
    assert row.lstrip().startswith("80") and "╌" in row
    assert "0:00" in text and "0:10" in text


def _plain(renderable: Any, width: int = 120) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_values_are_placed_at_their_time() -> None:
    # Intervals of 10 s ending at 10, 20, 30 in a 60 s run drawn on 6 columns.
    columns = place_by_time([(10.0, 1.0), (20.0, 2.0), (30.0, None)], 60.0, 6)
    assert columns == [1.0, 2.0, None, None, None, None]  # a hole and the unmeasured end
    # Fewer points than columns: each fills the columns of its interval.
    assert place_by_time([(10.0, 1.0), (20.0, 2.0)], 20.0, 4) == [1.0, 1.0, 2.0, 2.0]
    assert place_by_time([], 60.0, 3) == [None, None, None]


# -- scatter -------------------------------------------------------------------------------


@pytest.fixture
def store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def test_scatter_points_per_interval_and_request(store: Store) -> None:
    test = make_test()
    run = make_run(test, durationSeconds=60, finishedAt=START + timedelta(seconds=60))
    store_all(store.db, test, [run], plugin_snapshots(run, 8, slow_every=4))
    points = list(latency_views.scatter_points(store, run))
    assert len(points) == 16 and all(tuple(p) == latency_views.SCATTER_FIELDS for p in points)
    assert [p["elapsedSec"] for p in points[:4]] == [2.0, 2.0, 4.0, 4.0]
    slow = [p for p in points if p["name"] == "/api/orders" and p["p95ResponseMs"] == 800.0]
    assert [p["seq"] for p in slow] == [4, 8]  # the slow intervals stand out
    assert points[0]["timestamp"].endswith("Z") and points[0]["requests"] == 100
    grouped = latency_views.by_request(points)
    assert list(grouped) == [("GET", "/api/items"), ("POST", "/api/orders")]
    assert len(grouped[("POST", "/api/orders")]) == 8
    # Bounded for long runs: one point per request and column of time, the highest.
    bounded = latency_views.by_request(points, end=16.0, columns=2)
    assert bounded[("POST", "/api/orders")] == [(8.0, 800.0), (16.0, 800.0)]
    assert len(bounded[("GET", "/api/items")]) == 2


def test_terminal_scatter_draws_each_point(store: Store) -> None:
    groups = [("GET /a", [(1.0, 10.0), (59.0, 10.0)]), ("GET /b", [(30.0, 900.0)])]
    cells = dot_cells([g[1] for g in groups], columns=30, rows=4, end=60.0, bottom=0, top=1000)
    assert sum(bin(bits).count("1") for bits, _ in cells.values()) == 3
    assert {group for _, group in cells.values()} == {0, 1}
    console = Console(width=120, record=True, color_system="standard")
    console.print(scatter_plot("p95", groups, end=60.0, width=60,
                               thresholds=[ThresholdLine(500.0, "p95<500ms")]))
    text = console.export_text()  # in colour: Braille dots (without, marks: test_chart_scales)
    assert sum(1 for ch in text if BRAILLE < ord(ch) <= BRAILLE + 0xFF) == 3
    assert "p95<500ms" in text and "GET /a" in text and "1:00" in text


# -- heatmap -------------------------------------------------------------------------------


histograms = st.dictionaries(
    st.integers(min_value=0, max_value=120_000), st.integers(min_value=1, max_value=1000),
    max_size=12,
)


@given(st.lists(histograms, max_size=40), st.integers(min_value=1, max_value=15))
def test_heatmap_counts_add_up_to_the_intervals_requests(
    shapes: list[dict[int, int]], columns: int
) -> None:
    intervals = [
        (2.0 * i, 2.0 * (i + 1), encode(h) or None, sum(h.values()))
        for i, h in enumerate(shapes)
    ]
    matrix = heatmap_matrix(intervals, max_columns=columns)
    with_hist = [h for h in shapes if h]
    assert matrix.requests == sum(sum(h.values()) for h in with_hist)
    assert matrix.intervals == len(with_hist) and matrix.without_histogram == 0
    assert len(matrix.columns) <= columns
    assert all(len(row) == len(matrix.columns) for row in matrix.counts)
    for (low, high), row in zip(matrix.bands, matrix.counts, strict=True):
        assert low < high
        wanted = sum(n for h in with_hist for ms, n in h.items() if low <= ms < high)
        assert sum(row) == wanted or high == matrix.bands[-1][1]


def test_heatmap_bands_and_missing_histograms() -> None:
    assert band_edges(3, 130) == [2, 5, 10, 20, 50, 100, 200]
    assert band_edges(0, 0) == [0, 1, 2]
    matrix = heatmap_matrix([(0, 2, "3:5,40:10,130:2", 17), (2, 4, None, 9), (4, 6, "", 0)])
    assert matrix.requests == 17 and matrix.intervals == 1 and matrix.without_histogram == 1
    assert decode("3:5") == {3: 5}


def test_report_has_scatter_heatmap_error_rate_and_threshold_lines(store: Store) -> None:
    test = make_test()
    run = make_run(test, durationSeconds=60, finishedAt=START + timedelta(seconds=60),
                   thresholds=["p95<=500ms", "rps>=40", "error_rate<1%", "max<2s",
                               "POST /api/orders:p95<700ms"])
    store_all(store.db, test, [run], plugin_snapshots(run, 30))
    html = reports.render_html(reports.gather(store, run.id))
    for chart in ("rps", "p95", "errors", "users", "scatter", "heatmap"):
        assert f'class="chart {chart}"' in html
    marks = re.findall(r'data-threshold="([^"]+)"', html)
    assert sorted(marks) == sorted(["rps&gt;=40", "p95&lt;=500ms", "error_rate&lt;1%",
                                    "p95&lt;=500ms", "POST /api/orders:p95&lt;700ms"])
    assert "max&lt;2s" not in marks  # no chart shows max: not drawn anywhere
    cells = [int(n.replace(",", "")) for n in re.findall(r": ([\d,]+) requests ", html)]
    assert sum(cells) == sum(s.intervalRequests for s in plugin_snapshots(run, 30))
    assert "heatmap needs" not in html


def test_report_without_histograms_says_the_heatmap_needs_the_plugin(store: Store) -> None:
    test = make_test()
    run = make_run(test)
    store_all(store.db, test, [run], snapshots(run, 12))
    html = reports.render_html(reports.gather(store, run.id))
    assert 'class="chart heatmap"' not in html and "heatmap needs the histograms" in html
    assert 'class="chart scatter"' in html and html.count('data-request="') == 2


def test_a_nearly_flat_series_is_drawn_from_zero_with_distinct_labels() -> None:
    """Between 14.28 and 14.30 every round tick above the floor reads `14.3/s`: the axis
    starts at zero instead, so each row's label says something (fresh-clone trial)."""
    console = Console(width=80, record=True, color_system=None)
    chart = block_chart("RPS", [14.28, 14.3, 14.29, 14.3], width=80, fmt=lambda v: f"{v:.1f}/s")
    console.print(chart)
    labels = [
        line.split("┤" if "┤" in line else "└")[0].strip()
        for line in console.export_text().splitlines()
        if "┤" in line or "└" in line
    ]
    shown = [label for label in labels if label]
    assert len(shown) == len(set(shown)) and shown[-1] == "0.0/s", labels
