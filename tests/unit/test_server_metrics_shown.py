"""Server metrics shown (issue 23): `metrics show --view server` on a terminal and as data,
on the run's own time axis; a value that could not be read is shown missing with its
reason, never a 0."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from loadmgr.models import LoadTestRun, MetricSnapshot, ServerMetric
from loadmgr.service.server_metrics.readings import SERVER_FIELDS
from tests.conftest import CliResult
from tests.metrics_data import START, make_run, make_test, snapshots, store_all
from tests.unit.test_cli_unit import Captured, mock_store  # noqa: F401 - a fixture

Cli = Callable[..., CliResult]
DOWN = "cannot reach Prometheus at http://prom.test: connection refused"
COUNT = 6


def server_run(
    thresholds: tuple[str, ...] = ("server.cpu<1.5",),
) -> tuple[LoadTestRun, list[MetricSnapshot]]:
    """A run of 6 intervals of 5 s reading `cpu` (cores) and `pool`: cpu 0.5…, pool
    missing in interval 3 (Prometheus down)."""
    test = make_test("api")
    run = make_run(
        test,
        durationSeconds=30,
        finishedAt=START + timedelta(seconds=30),
        thresholds=list(thresholds),
        serverMetrics=[
            ServerMetric(name="cpu", query="sum(rate(x[30s]))", source="prom", unit="cores"),
            ServerMetric(name="pool", query="max(y)", source="prom"),
        ],
    )
    intervals = snapshots(run, COUNT)
    for item in intervals:
        item.windowEnd = START + timedelta(seconds=5 * item.seq)
        item.windowStart = item.windowEnd - timedelta(seconds=5)
        item.server = {"cpu": 0.5 * item.seq}
        if item.seq == 3:
            item.serverMissing = {"pool": DOWN}
        else:
            item.server["pool"] = 10.0
    return run, intervals


@pytest.fixture
def stored(mock_store: Captured) -> str:  # noqa: F811
    assert mock_store.client is not None
    run, intervals = server_run()
    store_all(mock_store.client["loadmgr"], make_test("api"), [run], intervals)
    return run.id


def test_the_data_formats_give_a_row_per_interval_and_metric(cli: Cli, stored: str) -> None:
    result = cli("metrics", "show", stored, "--view", "server", "-o", "csv")
    assert result.exit_code == 0, result.stderr
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert tuple(reader.fieldnames or ()) == SERVER_FIELDS
    rows = list(reader)
    assert len(rows) == COUNT * 2
    first = rows[0]
    assert (first["seq"], first["metric"], first["unit"], first["value"]) == (
        "1",
        "server.cpu",
        "cores",
        "0.5",
    )
    assert first["elapsedSec"] == "5.0" and first["windowStart"] == "2026-03-01T12:00:00.000Z"
    missing = [r for r in rows if r["missing"]]
    # Never a 0: no number, only the reason.
    assert [(r["seq"], r["metric"], r["value"], r["missing"]) for r in missing] == [
        ("3", "server.pool", "", DOWN)
    ]
    lines = cli("metrics", "show", stored, "--view", "server", "-o", "jsonl").stdout.splitlines()
    assert json.loads(lines[5])["value"] is None and json.loads(lines[5])["missing"] == DOWN


def test_the_terminal_shows_a_chart_per_metric_the_intervals_and_why_missing(
    cli: Cli, stored: str
) -> None:
    result = cli("metrics", "show", stored, "--view", "server")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "server.cpu (cores)" in out and "server.pool" in out
    assert "server.cpu<1.5" in out  # the threshold drawn on its chart
    assert "0:30" in out  # the run's time axis, to its end
    assert "SERVER.CPU (CORES)" in out and out.count("missing") >= 2
    assert f"server.pool: 1 interval missing: {DOWN} (1)" in " ".join(out.split())


def test_the_table_merges_neighbours_by_their_mean(cli: Cli, stored: str) -> None:
    out = cli("metrics", "show", stored, "--view", "server", "--points", "3").stdout
    assert "each row merges up to 2 intervals" in out
    # cpu (0.5, 1.0) → 0.75; pool of intervals 3 and 4: only 4's is known, 10.
    assert "0.75" in out


def test_a_run_without_server_metrics_says_so(cli: Cli, mock_store: Captured) -> None:  # noqa: F811
    assert mock_store.client is not None
    test = make_test("api")
    run = make_run(test)
    store_all(mock_store.client["loadmgr"], test, [run], snapshots(run, 2))
    result = cli("metrics", "show", run.id, "--view", "server")
    assert result.exit_code == 0 and "reads no server metrics" in result.stderr
    data = cli("metrics", "show", run.id, "--view", "server", "-o", "csv")
    assert data.stdout.strip() == ",".join(SERVER_FIELDS)


def test_the_html_report_draws_each_server_metric_under_rps_and_p95(
    mock_store: Captured,  # noqa: F811
) -> None:
    import re

    from loadmgr.models import Scope
    from loadmgr.service.reports import run_html as reports
    from loadmgr.store import Store

    assert mock_store.client is not None
    store = Store(mock_store.client["loadmgr"], Scope(), "mongodb://x")
    run, intervals = server_run()
    store_all(store.db, make_test("api"), [run], intervals)
    html = reports.render_html(reports.gather(store, run.id))
    order = re.findall(r'<svg class="(chart [a-z0-9]+)"', html)
    assert order[:6] == [
        "chart rps",
        "chart p95",
        "chart server",
        "chart server",
        "chart errors",
        "chart users",
    ]
    servers = re.findall(r'<svg class="chart server".*?</svg>', html, re.S)
    assert "Server cpu (cores)" in servers[0] and 'data-threshold="server.cpu&lt;1.5"' in servers[0]
    assert "Server pool" in servers[1] and "data-threshold" not in servers[1]
    assert f"server.pool: 1 interval(s) not read: {DOWN} (1)" in html
