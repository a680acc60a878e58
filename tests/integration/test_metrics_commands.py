"""`loadmgr metrics` against the real wire server, on synthetic runs stored with pymongo,
and once on a real Locust run."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from loadmgr.models import LoadTest, LoadTestRun, Scope
from tests.metrics_data import (
    REQUESTS,
    final_stats,
    make_run,
    make_test,
    snapshots,
    steady_intervals,
    store_all,
)

pytestmark = pytest.mark.integration

INTERVALS = 120


@pytest.fixture
def stored(mongo_db: Any) -> dict[str, Any]:
    """A test with a finished run of INTERVALS intervals, a worse run, and an empty run."""
    test = make_test()
    run = make_run(test, thresholdResults=_results(), verdict="failed")
    worse = make_run(test, final=final_stats(p95=150.0, rps=80.0))
    empty = make_run(test, status="Running", finalStats=None, finishedAt=None, stopReason=None)
    store_all(
        mongo_db, test, [run, worse, empty],
        [*snapshots(run, INTERVALS), *steady_intervals(worse, seed=1)],
    )
    return {"test": test, "run": run, "worse": worse, "empty": empty}


def _results() -> list[dict[str, Any]]:
    return [
        {"expression": "p95<500ms", "metric": "p95", "op": "<", "limit": 500.0,
         "actual": 120.0, "passed": True},
        {"expression": "error_rate<0.5%", "metric": "error_rate", "op": "<", "limit": 0.005,
         "actual": 0.01, "passed": False},
    ]


def _snapshot_of(mongo_db: Any) -> dict[str, int]:
    return {name: mongo_db[name].count_documents({}) for name in mongo_db.list_collection_names()}


# -- show ----------------------------------------------------------------------------------


def test_summary(cli: Any, stored: dict[str, Any]) -> None:
    run: LoadTestRun = stored["run"]
    result = cli("metrics", "show", run.id, "-o", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert (data["runId"], data["requests"], data["failures"]) == (run.id, 10_000, 100)
    assert (data["rpsMean"], data["p95ResponseMs"], data["verdict"]) == (100.0, 120.0, "failed")
    assert [r["passed"] for r in data["thresholdResults"]] == [True, False]
    table = cli("metrics", "show", run.id)
    assert table.exit_code == 0
    for text in ("10,000", "1.00%", "p95 120ms", "error_rate<0.5%", "FAIL", "pass"):
        assert text in table.stdout
    assert cli("metrics", "show", run.id, "-q").stdout == f"{run.id}\n"


def test_timeseries_all_and_downsampled(cli: Any, stored: dict[str, Any]) -> None:
    run: LoadTestRun = stored["run"]
    everything = cli("metrics", "show", run.id, "--view", "timeseries", "-o", "json")
    assert everything.exit_code == 0, everything.stderr
    rows = everything.json()
    assert [r["seq"] for r in rows] == list(range(1, INTERVALS + 1))
    assert rows[0]["timestamp"] == "2026-03-01T12:00:05.000Z" and rows[0]["totalRPS"] == 100.0

    fewer = cli("metrics", "show", run.id, "--view", "timeseries", "--points", "7", "-o", "json")
    assert fewer.exit_code == 0, fewer.stderr
    merged = fewer.json()
    assert 0 < len(merged) <= 7
    assert sum(r["intervals"] for r in merged) == INTERVALS
    assert sum(r["intervalRequests"] for r in merged) == 500 * INTERVALS
    assert all(r["totalRPS"] == pytest.approx(100.0) for r in merged)

    lines = cli("metrics", "show", run.id, "--view", "timeseries", "--points", "7", "-o", "jsonl")
    assert [json.loads(line) for line in lines.stdout.splitlines()] == merged
    as_csv = cli("metrics", "show", run.id, "--view", "timeseries", "-o", "csv")
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(parsed) == INTERVALS and parsed[-1]["seq"] == str(INTERVALS)


def test_timeseries_table_draws_charts(cli: Any, stored: dict[str, Any]) -> None:
    result = cli("metrics", "show", stored["run"].id, "--view", "timeseries")
    assert result.exit_code == 0, result.stderr
    for text in ("RPS", "p95 latency", "users", "█", "┤", "TIME", "INTERVALS"):
        assert text in result.stdout
    assert "shown as" in result.stderr  # 120 intervals merged into the default 60 rows


def test_run_without_intervals_is_empty_not_an_error(cli: Any, stored: dict[str, Any]) -> None:
    empty: LoadTestRun = stored["empty"]
    data = cli("metrics", "show", empty.id, "--view", "timeseries", "-o", "json")
    assert (data.exit_code, data.json()) == (0, [])
    assert cli("metrics", "show", empty.id, "--view", "timeseries", "--points", "5",
               "-o", "json").json() == []
    table = cli("metrics", "show", empty.id, "--view", "timeseries")
    assert table.exit_code == 0 and "no intervals" in table.stderr and table.stdout == ""
    for view in ("requests", "errors"):
        result = cli("metrics", "show", empty.id, "--view", view, "-o", "json")
        assert (result.exit_code, result.json()) == (0, [])
    summary = cli("metrics", "show", empty.id, "-o", "json")
    assert summary.exit_code == 0 and summary.json()["requests"] == 0
    export = cli("metrics", "export", empty.id, "-o", "csv")
    assert export.exit_code == 0 and export.stdout.startswith("loadTestRunId,seq,")
    assert len(export.stdout.splitlines()) == 1


def test_requests_and_errors(cli: Any, stored: dict[str, Any]) -> None:
    run: LoadTestRun = stored["run"]
    rows = cli("metrics", "show", run.id, "--view", "requests", "-o", "json").json()
    assert [(r["method"], r["name"]) for r in rows] == list(REQUESTS)
    assert rows[0]["numRequests"] == 5000 and rows[0]["p99ResponseMs"] == 250.0
    table = cli("metrics", "show", run.id, "--view", "requests").stdout
    assert "/api/orders" in table and "P99" in table and "250ms" in table
    errors = cli("metrics", "show", run.id, "--view", "errors", "-o", "csv").stdout
    parsed = list(csv.DictReader(io.StringIO(errors)))
    assert [(e["error"], e["occurrences"]) for e in parsed] == [
        ("HTTPError(500)", "70"),
        ("ConnectionError", "30"),
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--view", "bad"], 2, "invalid --view 'bad'"),
        (["--view", "timeseries", "--points", "0"], 2, "invalid --points 0"),
        (["--view", "timeseries", "--points", "-3"], 2, "invalid --points -3"),
        (["-o", "xml"], 2, "unknown output format"),
    ],
)
def test_show_bad_input(
    cli: Any, stored: dict[str, Any], mongo_db: Any, args: list[str], code: int, message: str
) -> None:
    before = _snapshot_of(mongo_db)
    result = cli("metrics", "show", stored["run"].id, *args)
    assert result.exit_code == code
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stdout == ""
    assert _snapshot_of(mongo_db) == before


@pytest.mark.parametrize("run_id", ["missing", '{"$gt": ""}', "$where", "a.b"])
def test_unknown_run_is_4_everywhere(cli: Any, stored: dict[str, Any], run_id: str) -> None:
    for args in (
        ["metrics", "show", run_id],
        ["metrics", "show", run_id, "--view", "timeseries", "-o", "json"],
        ["metrics", "export", run_id],
        ["metrics", "compare", stored["run"].id, run_id],
        ["metrics", "report", run_id, "--junit", "-"],
    ):
        result = cli(*args)
        assert result.exit_code == 4, (args, result.stderr)
        assert "not found" in result.stderr and result.stdout == ""


# -- export --------------------------------------------------------------------------------


def test_export_csv_and_jsonl(cli: Any, stored: dict[str, Any]) -> None:
    run: LoadTestRun = stored["run"]
    result = cli("metrics", "export", run.id)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == INTERVALS
    assert rows[0]["loadTestRunId"] == run.id and rows[0]["timestamp"] == "2026-03-01T12:00:05.000Z"
    assert rows[-1]["totalRequests"] == str(500 * INTERVALS) and rows[-1]["final"] == "true"
    lines = cli("metrics", "export", run.id, "-o", "jsonl").stdout.splitlines()
    assert len(lines) == INTERVALS and json.loads(lines[4])["seq"] == 5
    as_json = cli("metrics", "export", run.id, "-o", "json").json()
    assert [r["seq"] for r in as_json] == list(range(1, INTERVALS + 1))


def test_export_per_request(cli: Any, stored: dict[str, Any]) -> None:
    result = cli("metrics", "export", stored["run"].id, "--requests", "-o", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == INTERVALS * len(REQUESTS)
    assert {(r["method"], r["name"]) for r in rows} == set(REQUESTS)
    assert rows[0]["seq"] == "1" and rows[-1]["seq"] == str(INTERVALS)
    assert rows[1]["intervalRequests"] == "250"


def test_export_refuses_table(cli: Any, stored: dict[str, Any]) -> None:
    result = cli("metrics", "export", stored["run"].id, "-o", "table")
    assert result.exit_code == 2 and "for export" in result.stderr


# -- compare -------------------------------------------------------------------------------


def test_compare(cli: Any, stored: dict[str, Any]) -> None:
    run, worse = stored["run"], stored["worse"]
    result = cli("metrics", "compare", run.id, worse.id, "-o", "json")
    assert result.exit_code == 0, result.stderr
    rows = {(r["request"], r["metric"], r["position"]): r for r in result.json()}
    p95 = rows[("Aggregated", "p95", 1)]
    assert (p95["value"], p95["change"], p95["regression"]) == (150.0, 30.0, True)
    assert p95["relativeChange"] == pytest.approx(0.25)
    assert rows[("Aggregated", "rps", 1)]["regression"] is True
    assert rows[("GET /api/items", "p95", 1)]["regression"] is True
    assert "regression" in result.stderr and "different tests" not in result.stderr

    table = cli("metrics", "compare", run.id, worse.id)
    assert table.exit_code == 0
    assert "+25.0%" in table.stdout and "worse" in table.stdout and "GET /api/items" in table.stdout

    allowed = cli("metrics", "compare", run.id, worse.id, "--max-regression", "p95=30%",
                  "--max-regression", "rps=25%", "--fail-on-regression", "-o", "json")
    assert allowed.exit_code == 0
    assert not any(r["regression"] for r in allowed.json() if r["request"] == "Aggregated")
    failing = cli("metrics", "compare", run.id, worse.id, "--fail-on-regression", "-o", "json")
    assert failing.exit_code == 1
    assert cli("metrics", "compare", run.id, worse.id, "-q").stdout == f"{run.id}\n{worse.id}\n"


def test_compare_runs_of_different_tests_says_so(cli: Any, mongo_db: Any) -> None:
    one, two = make_test("one"), make_test("two")
    first, second = make_run(one), make_run(two)
    store_all(mongo_db, one, [first])
    store_all(mongo_db, two, [second])
    result = cli("metrics", "compare", first.id, second.id, "-o", "json")
    assert result.exit_code == 0
    assert "different tests" in result.stderr
    assert json.loads(result.stdout)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-regression", "p95"], "METRIC=PERCENT"),
        (["--max-regression", "p42=10%"], "'p42'"),
        (["--max-regression", "p95=ten"], "'ten'"),
        (["--tolerance", "lots"], "--tolerance"),
    ],
)
def test_compare_bad_input(
    cli: Any, stored: dict[str, Any], extra: list[str], message: str
) -> None:
    result = cli("metrics", "compare", stored["run"].id, stored["worse"].id, *extra)
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


def test_compare_needs_two_runs(cli: Any, stored: dict[str, Any]) -> None:
    one = cli("metrics", "compare", stored["run"].id)
    assert one.exit_code == 2 and "at least two runs" in one.stderr
    assert cli("metrics", "compare").exit_code == 2


# -- baseline and regressions (service functions the CLI wires) ----------------------------


def test_baseline_and_regressions_on_the_real_server(
    mongo_uri: str, mongo_db: Any, stored: dict[str, Any]
) -> None:
    import os

    from loadmgr.service.analysis.compare import check_regressions, set_baseline
    from loadmgr.store import Store

    store = Store.connect(mongo_uri, os.environ["LOADMGR_DATABASE"], Scope(), 5000)
    try:
        test: LoadTest = stored["test"]
        updated = set_baseline(store, test.name, stored["run"].id, "alice")
        doc = mongo_db.load_tests.find_one({"id": test.id})
        assert doc["baselineRunId"] == stored["run"].id and doc["version"] == updated.version == 2
        assert doc["updatedBy"] == "alice"
        found = check_regressions(store, stored["worse"], {"p95": 0.10, "rps": 0.25, "p99": 0.0})
        assert [r.metric for r in found] == ["p95"]
    finally:
        store.close()


# -- report --------------------------------------------------------------------------------


def test_html_report(cli: Any, stored: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    result = cli("metrics", "report", stored["run"].id, "--html", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and str(path) in result.stderr
    html = path.read_text(encoding="utf-8")
    assert html.count('<svg class="chart') == 5 and html.count("<path d=") >= 4
    for number in ("10,000", "120ms", "250ms", "error_rate&lt;0.5%", "/api/orders"):
        assert number in html
    # Nothing to fetch: no scripts, no external resources (the target URL is only text).
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=|url\(|@import""", html)
    assert re.findall(r"https?://[^\s<\"]+", html) == ["http://127.0.0.1:8089"]
    assert not list(tmp_path.glob(".*partial"))


def test_junit_report(cli: Any, stored: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    result = cli("metrics", "report", stored["run"].id, "--junit", str(path))
    assert result.exit_code == 0, result.stderr
    root = ET.parse(path).getroot()
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "2", "1")
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ["p95<500ms", "error_rate<0.5%"]
    assert cases[0].find("failure") is None and cases[1].find("failure") is not None
    to_stdout = cli("metrics", "report", stored["worse"].id, "--junit", "-")
    only = ET.fromstring(to_stdout.stdout).findall("testsuite/testcase")
    assert len(only) == 1 and only[0].find("failure") is None  # no thresholds: the status


def test_report_bad_input(cli: Any, stored: dict[str, Any], tmp_path: Path) -> None:
    nothing = cli("metrics", "report", stored["run"].id)
    assert nothing.exit_code == 2 and "--html" in nothing.stderr
    unwritable = cli("metrics", "report", stored["run"].id, "--html",
                     str(tmp_path / "no" / "such" / "dir" / "r.html"))
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.stderr
    bad = cli("metrics", "report", stored["run"].id, "--junit", "-", "--max-regression", "x")
    assert bad.exit_code == 2 and bad.stdout == ""


# -- a real run ----------------------------------------------------------------------------


def test_metrics_of_a_real_run(cli: Any, target_server: Any, tmp_path: Path) -> None:
    from tests.locust_servers import DEMO_LOCUSTFILE

    created = cli(
        "tests", "create", "--name", "real", "--target-url", target_server.url,
        "--locustfile", str(DEMO_LOCUSTFILE), "--users", "4", "--spawn-rate", "4",
        "--duration", "6s", "--threshold", "error_rate<50%", "--threshold", "max<0.001ms",
    )
    assert created.exit_code == 0, created.stderr
    started = cli("runs", "start", "real", "--interval", "2", "--workers", "0", "-o", "json")
    assert started.exit_code == 1, started.stderr  # max<0.001ms cannot pass
    run = started.json()

    summary = cli("metrics", "show", run["id"], "-o", "json").json()
    assert summary["requests"] == run["finalStats"]["totals"]["requests"] > 0
    assert summary["verdict"] == "failed" and summary["rpsMax"] > 0
    series = cli("metrics", "show", run["id"], "--view", "timeseries", "-o", "json").json()
    assert len(series) >= 2 and sum(r["intervalRequests"] for r in series) > 0
    export = list(csv.DictReader(io.StringIO(cli("metrics", "export", run["id"]).stdout)))
    assert len(export) == len(series) and export[-1]["final"] == "true"

    junit_path, html_path = tmp_path / "j.xml", tmp_path / "r.html"
    report = cli("metrics", "report", run["id"], "--junit", str(junit_path),
                 "--html", str(html_path))
    assert report.exit_code == 0, report.stderr
    suite = ET.parse(junit_path).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("2", "1")
    page = html_path.read_text()
    # The charts over time, the scatter, the generator's CPU and, with the plugin's
    # histograms, the heatmap.
    assert page.count('<svg class="chart') == 7 and 'class="chart heatmap"' in page
