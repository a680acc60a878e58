"""`metrics show --view scatter`, the charts of `--view timeseries` and the HTML report's
charts, against the real wire server on intervals stored through loadmgr's own models;
the report opened in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from loadmgr.models import LoadTestRun
from loadmgr.service.analysis.latency import SCATTER_FIELDS
from tests.conftest import documents_of
from tests.headless_chromium import load_page
from tests.metrics_data import START, make_run, make_test, plugin_snapshots, snapshots, store_all

pytestmark = pytest.mark.integration

INTERVALS = 90  # 2-s intervals: a 3-minute run
THRESHOLDS = ["p95<=500ms", "rps>=40", "error_rate<1%", "POST /api/orders:p95<700ms"]
COLLECTIONS = ("load_tests", "load_test_runs", "metrics_timeseries")


@pytest.fixture
def stored(mongo_db: Any) -> dict[str, Any]:
    """A plugin run (histograms, a slow tenth of POSTs every 4th interval) and a run
    recorded without the plugin (no histograms)."""
    test = make_test()
    run = make_run(test, durationSeconds=180, finishedAt=START + timedelta(seconds=180),
                   thresholds=THRESHOLDS)
    rolling = make_run(test, name="without plugin")
    store_all(mongo_db, test, [run, rolling],
              plugin_snapshots(run, INTERVALS) + snapshots(rolling, 20))
    return {"run": run, "rolling": rolling}


def test_scatter_points_as_json_jsonl_and_csv(cli: Any, stored: dict[str, Any]) -> None:
    run: LoadTestRun = stored["run"]
    result = cli("metrics", "show", run.id, "--view", "scatter", "-o", "json")
    assert result.exit_code == 0, result.stderr
    points = result.json()
    assert len(points) == 2 * INTERVALS
    assert all(list(p) == list(SCATTER_FIELDS) for p in points)
    first = points[0]
    assert (first["elapsedSec"], first["seq"], first["method"], first["name"]) == (
        2.0, 1, "GET", "/api/items",
    )
    assert first["timestamp"] == "2026-03-01T12:00:02.000Z" and first["requests"] == 100
    slow = [p for p in points if p["p95ResponseMs"] == 800.0]
    assert [p["seq"] for p in slow] == list(range(4, INTERVALS + 1, 4))
    assert all(p["name"] == "/api/orders" and p["maxResponseMs"] == 800.0 for p in slow)

    lines = cli("metrics", "show", run.id, "--view", "scatter", "-o", "jsonl").stdout
    assert [json.loads(line) for line in lines.splitlines()] == points
    table = cli("metrics", "show", run.id, "--view", "scatter", "-o", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == len(points) and list(rows[0]) == list(SCATTER_FIELDS)
    assert rows[3]["p95ResponseMs"] == str(points[3]["p95ResponseMs"])


def test_scatter_on_a_terminal(cli: Any, stored: dict[str, Any]) -> None:
    result = cli("metrics", "show", stored["run"].id, "--view", "scatter")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "p95 latency of each request" in out
    # Piped, without colour: each request's own mark where its dots are (Braille in colour).
    assert sum(1 for ch in out if ch in "●○") > 20
    for text in ("GET /api/items", "POST /api/orders", "p95<=500ms",
                 "POST /api/orders:p95<700ms", "0:00", "3:00", "800ms", "╌"):
        assert text in out, text


def test_scatter_of_a_run_without_intervals(cli: Any, mongo_db: Any) -> None:
    test = make_test()
    run = make_run(test, status="Running", finalStats=None, finishedAt=None, stopReason=None)
    store_all(mongo_db, test, [run])
    assert cli("metrics", "show", run.id, "--view", "scatter", "-o", "json").json() == []
    table = cli("metrics", "show", run.id, "--view", "scatter")
    assert table.exit_code == 0 and table.stdout == "" and "no intervals" in table.stderr


def test_scatter_bad_inputs(cli: Any, stored: dict[str, Any], mongo_db: Any) -> None:
    run_id = stored["run"].id
    before = documents_of(mongo_db, COLLECTIONS)
    cases = [
        (("--view", "scatterplot"), 2, "invalid --view 'scatterplot'"),
        (("--view", "scatter", "--from", "10s"), 2, "--from/--to go with"),
        (("--view", "scatter", "-o", "xml"), 2, "unknown output format"),
        (("--view", "scatter", "--points", "0"), 2, "invalid --points"),
    ]
    for args, code, message in cases:
        result = cli("metrics", "show", run_id, *args)
        assert result.exit_code == code, (args, result.stderr)
        assert message in result.stderr and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) <= 2  # error: …, maybe a hint
    missing = cli("metrics", "show", "deadbeef-0000", "--view", "scatter", "-o", "json")
    assert missing.exit_code == 4 and missing.stdout == ""
    assert documents_of(mongo_db, COLLECTIONS) == before


def test_timeseries_charts_read_well(cli: Any, stored: dict[str, Any]) -> None:
    result = cli("metrics", "show", stored["run"].id, "--view", "timeseries")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("RPS", "p95 latency", "error rate", "users", "rps>=40", "p95<=500ms",
                 "error_rate<1%", "0:00", "3:00", "╌", "┬"):
        assert text in out, text
    # Round ticks on the value axes: 0, 20, 40… requests per second.
    assert " 20.0/s ┤" in out and "0.0/s └" in out


def test_html_report_in_headless_chromium(
    cli: Any, stored: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "report.html"
    result = cli("metrics", "report", stored["run"].id, "--html", str(path))
    assert result.exit_code == 0, result.stderr
    page = load_page(path, {
        "bodyWidth": "document.body.getBoundingClientRect().width",
        "contentWidth": "(() => { const s = getComputedStyle(document.body);"
        " return document.body.clientWidth - parseFloat(s.paddingLeft)"
        " - parseFloat(s.paddingRight); })()",
        "charts": "[...document.querySelectorAll('svg.chart')].map(s => ({"
        " cls: s.getAttribute('class'), width: s.getBoundingClientRect().width,"
        " height: s.getBoundingClientRect().height }))",
        "thresholds": "[...document.querySelectorAll('svg .threshold')].map(g =>"
        " [g.closest('svg').getAttribute('class'), g.dataset.threshold,"
        " g.querySelector('line').getBoundingClientRect().width])",
        "dots": "document.querySelectorAll('svg.scatter circle').length",
        "cells": "document.querySelectorAll('svg.heatmap rect.cell').length",
        # Where each line over time starts, in the chart's own units (the plot starts at 64).
        "starts": "[...document.querySelectorAll('svg.chart path')].map(p => {"
        " const s = p.closest('svg').getBoundingClientRect();"
        " return (p.getBoundingClientRect().left - s.left) / s.width * 960; })",
    }, width=1400)
    assert page.console == []
    charts = {c["cls"]: c for c in page.values["charts"]}
    assert set(charts) == {"chart rps", "chart p95", "chart errors", "chart users",
                           "chart scatter", "chart heatmap"}
    content = page.values["contentWidth"]
    assert content > 1200
    for chart in charts.values():  # the page's whole width, at any window size
        assert chart["width"] == pytest.approx(content, abs=2) and chart["height"] > 150
    drawn = sorted((cls, label) for cls, label, _ in page.values["thresholds"])
    assert drawn == sorted([
        ("chart errors", "error_rate<1%"), ("chart p95", "p95<=500ms"),
        ("chart rps", "rps>=40"), ("chart scatter", "POST /api/orders:p95<700ms"),
        ("chart scatter", "p95<=500ms"),
    ])
    # Each threshold line crosses the whole plot (the plot is 880 of the chart's 960 units).
    assert all(width > 0.9 * content for _, _, width in page.values["thresholds"])
    assert page.values["dots"] >= 2 * INTERVALS and page.values["cells"] > INTERVALS
    assert page.dom.count('<g class="threshold"') == 5
    # Each interval is drawn over its own window: the lines start at 0:00, not at the
    # first interval's end (issue 20, item 15).
    assert len(page.values["starts"]) == 4
    assert all(start == pytest.approx(64, abs=1) for start in page.values["starts"])
    assert page.screenshot.startswith(b"\x89PNG")

    narrow = load_page(path, {"w": "document.querySelector('svg.chart')"
                              ".getBoundingClientRect().width",
                              "page": "document.documentElement.clientWidth"}, width=700)
    assert narrow.console == [] and narrow.values["w"] < narrow.values["page"]


def test_html_report_without_histograms(
    cli: Any, stored: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "rolling.html"
    assert cli("metrics", "report", stored["rolling"].id, "--html", str(path)).exit_code == 0
    page = load_page(path, {
        "heatmaps": "document.querySelectorAll('svg.heatmap').length",
        "note": "document.querySelector('.heatmap-missing').textContent",
        "scatter": "document.querySelectorAll('svg.scatter circle').length",
    })
    assert page.console == []
    assert page.values["heatmaps"] == 0 and "needs the histograms" in page.values["note"]
    assert page.values["scatter"] >= 20


def test_the_browser_check_sees_console_errors(tmp_path: Path) -> None:
    """The check above is not vacuous: a refused script and an exception are reported."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
        "content=\"default-src 'none'\"></head><body><script>x()</script></body></html>"
    )
    thrown = tmp_path / "thrown.html"
    thrown.write_text("<!DOCTYPE html><html><body><script>missing()</script></body></html>")
    assert "Content Security Policy" in " ".join(load_page(bad).console)
    assert "Uncaught" in " ".join(load_page(thrown).console)
    assert load_page(thrown).dom.startswith("<html><head></head><body><script>")


def test_server_metrics_in_the_html_report_in_headless_chromium(
    cli: Any, mongo_db: Any, tmp_path: Path
) -> None:
    """Each server metric is drawn under RPS and p95, on their time axis: its line starts
    at the run's 0:00 as theirs do, its threshold crosses the plot, a missing value is a
    gap with its reason (issue 23)."""
    from tests.unit.test_server_metrics_shown import DOWN, server_run

    run, intervals = server_run()
    store_all(mongo_db, make_test("api"), [run], intervals)
    path = tmp_path / "server.html"
    assert cli("metrics", "report", run.id, "--html", str(path)).exit_code == 0
    page = load_page(path, {
        "order": "[...document.querySelectorAll('svg.chart')].map(s => s.getAttribute('class'))",
        "widths": "[...document.querySelectorAll('svg.chart')].slice(0, 4)"
        ".map(s => s.getBoundingClientRect().width)",
        "thresholds": "[...document.querySelectorAll('svg.server .threshold')]"
        ".map(g => g.dataset.threshold)",
        "starts": "[...document.querySelectorAll('svg.chart.rps path, svg.chart.server path')]"
        ".map(p => { const s = p.closest('svg').getBoundingClientRect();"
        " return (p.getBoundingClientRect().left - s.left) / s.width * 960; })",
        "missing": "document.querySelector('.server-missing').textContent",
    }, width=1200)
    assert page.console == []
    assert page.values["order"][:6] == [
        "chart rps", "chart p95", "chart server", "chart server", "chart errors", "chart users"
    ]
    assert len(set(page.values["widths"])) == 1  # the same width: the same time axis
    assert page.values["thresholds"] == ["server.cpu<1.5"]
    # RPS, cpu and the two pieces of pool (a gap at its missing interval) start where the
    # time axis does or later; the first of each chart at 0:00.
    starts = page.values["starts"]
    assert len(starts) == 4
    assert [round(x) for x in starts[:2]] == [64, 64] and starts[3] > starts[2]
    assert DOWN in page.values["missing"]
