"""The HTML report, the JUnit XML, the SVG and the terminal charts, on mongomock."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import mongomock
import pytest

from loadmgr.cli.charts import bar_rows, chart_floor, resample
from loadmgr.models import Scope, ThresholdResult
from loadmgr.models.axis import sparkline
from loadmgr.service.analysis import compare
from loadmgr.service.reports import junit
from loadmgr.service.reports import run_html as reports
from loadmgr.service.reports.svg import elapsed_label, line_chart, nice_ceiling
from loadmgr.store import Store
from tests.metrics_data import (
    final_stats,
    make_run,
    make_test,
    snapshots,
    steady_intervals,
    store_all,
)

HOSTILE = '<script>alert("x")</script>&\x1b[31m'


@pytest.fixture
def store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def _results(*passed: bool) -> list[ThresholdResult]:
    return [
        ThresholdResult(
            expression=f"p95<{100 + i}ms", metric="p95", op="<", limit=100.0 + i,
            actual=120.0, passed=ok,
        )
        for i, ok in enumerate(passed)
    ]


def test_html_is_self_contained_with_charts_numbers_and_escaped_data(store: Store) -> None:
    test = make_test(HOSTILE.replace("\x1b", ""))
    errors = [{"method": "GET", "name": HOSTILE, "error": HOSTILE, "occurrences": 12_345}]
    run = make_run(
        test,
        name=HOSTILE,
        final=final_stats(requests=98_765, errors=errors),
        thresholdResults=_results(True, False),
        verdict="failed",
    )
    store_all(store.db, test, [run], snapshots(run, 500))
    html = reports.render_html(reports.gather(store, run.id))
    # Four charts over time and the scatter (no histograms), then three of the test's recent
    # trend (its only run here).
    assert html.count('<svg class="chart') == 5 and html.count('<svg class="trend-chart') == 3
    assert "heatmap needs the histograms" in html
    for chart in ("chart rps", "chart p95", "chart errors", "chart users", "chart scatter"):
        assert f'class="{chart}"' in html
    assert "<path d=" in html
    for svg in re.findall(r"<svg.*?</svg>", html, re.S):
        ET.fromstring(svg)  # each chart is well-formed on its own
    assert "98,765" in html and "12,345" in html and "120ms" in html
    assert "p95&lt;101ms" in html and "FAIL" in html
    assert "<script" not in html and "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)\s*=|url\(|@import|https?://(?!127\.0\.0\.1:8089)""", html)
    assert "Content-Security-Policy" in html


def test_html_of_a_run_without_intervals_or_final_stats(store: Store) -> None:
    test = make_test()
    run = make_run(test, status="Pending", finalStats=None, startedAt=None, finishedAt=None)
    store_all(store.db, test, [run])
    html = reports.render_html(reports.gather(store, run.id))
    assert html.count("<svg") == 5 and html.count("no data") == 5
    assert "No requests recorded." in html


def test_html_and_junit_show_the_baseline(store: Store) -> None:
    test = make_test()
    base = make_run(test, final=final_stats(p95=100.0))
    run = make_run(test, final=final_stats(p95=150.0))
    store_all(store.db, test, [base, run], [*steady_intervals(base), *steady_intervals(run)])
    compare.set_baseline(store, test.id, base.id, "tester")
    data = reports.gather(store, run.id, max_regression={"p95": 0.1})
    html = reports.render_html(data)
    assert base.id in html and "+50.0%" in html and "worse" in html
    assert "limits given to this report" in html
    suite = ET.fromstring(junit.junit_xml(data)).find("testsuite")
    assert suite is not None
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == [f"run {run.name}", "p95 regression"]
    assert suite.get("failures") == "1"
    # A run never judged against the baseline: the changes are shown, judged by nobody.
    unjudged = reports.gather(store, run.id)
    html = reports.render_html(unjudged)
    assert "+50.0%" in html and ">worse<" not in html and "not judged" in html
    plain = ET.fromstring(junit.junit_xml(unjudged)).find("testsuite")
    assert plain is not None and plain.get("failures") == "0"


def test_junit_one_case_per_threshold(store: Store) -> None:
    test = make_test()
    run = make_run(test, thresholdResults=_results(True, False, False), verdict="failed")
    store_all(store.db, test, [run])
    root = ET.fromstring(junit.junit_xml(reports.gather(store, run.id)))
    suite = root.find("testsuite")
    assert suite is not None
    cases = list(suite.iter("testcase"))
    assert [c.get("name") for c in cases] == ["p95<100ms", "p95<101ms", "p95<102ms"]
    assert (suite.get("tests"), suite.get("failures")) == ("3", "2")
    assert (root.get("tests"), root.get("failures")) == ("3", "2")
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "p95<101ms: 120ms (limit < 101ms)"
    assert cases[0].find("failure") is None


@pytest.mark.parametrize(
    ("status", "expect"),
    [("Finished", None), ("Failed", "error"), ("Running", "skipped")],
)
def test_junit_without_thresholds_is_the_run_status(
    store: Store, status: str, expect: str | None
) -> None:
    test = make_test()
    run = make_run(test, status=status, error="Locust lost" if status == "Failed" else None)
    store_all(store.db, test, [run])
    suite = ET.fromstring(junit.junit_xml(reports.gather(store, run.id))).find("testsuite")
    assert suite is not None
    cases = list(suite.iter("testcase"))
    assert len(cases) == 1 and cases[0].get("name") == f"run {run.name}"
    children = [child.tag for child in cases[0]]
    assert children == ([] if expect is None else [expect])


def test_a_baseline_regression_is_the_stored_verdict_in_html_and_junit(store: Store) -> None:
    """Judged with the limits the run used, not a flat 5 %; the badge is the stored verdict."""
    test = make_test()
    base = make_run(test, final=final_stats(p50=1.0, p95=100.0, rps=100.0))
    run = make_run(test, final=final_stats(p50=2.0, p95=105.0, rps=50.0))
    store_all(store.db, test, [base, run], [*steady_intervals(base), *steady_intervals(run)])
    compare.set_baseline(store, test.id, base.id, "tester")
    updated = compare.apply_baseline(store, run, {"p95": 0.10, "rps": 0.10})
    assert updated.verdict is not None and updated.verdict.value == "failed"
    assert updated.baselineRunId == base.id
    assert [r.kind.value for r in updated.verdictReasons] == ["baseline"]
    stored = store.runs.find_by_id(run.id)
    assert stored is not None and stored.verdict == updated.verdict
    data = reports.gather(store, run.id)
    assert data.judged_by == "run" and [c.metric for c in data.checks] == ["p95", "rps"]
    html = reports.render_html(data)
    assert '<span class="badge failed">FAILED</span>' in html
    assert "rps is 50.0% worse than the baseline (100.0/s → 50.0/s; allowed 10.0%)" in html
    assert "(significant)" in html
    assert "limits this run was started with" in html
    rows = dict(re.findall(r"<tr><td>(\w+)</td>.*?<td[^>]*>(worse|ok|not judged)</td></tr>", html))
    # p50 doubled (1 ms → 2 ms) but was not judged; p95 is within its 10 %.
    assert rows == {
        "p95": "ok", "rps": "worse", "p50": "not judged", "p90": "not judged",
        "p99": "not judged", "avg": "not judged", "max": "not judged",
        "error_rate": "not judged",
    }
    suite = ET.fromstring(junit.junit_xml(data)).find("testsuite")
    assert suite is not None
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == [f"run {run.name}", "p95 regression", "rps regression"]
    assert suite.get("failures") == "1"


@pytest.mark.parametrize(
    ("fields", "badge", "tag", "kind"),
    [
        ({"stopReason": "user", "verdict": "aborted", "verdictReasons": [
            {"kind": "aborted", "message": "stopped by alice", "stopReason": "user"}]},
         "ABORTED", "failure", "aborted"),
        ({"status": "Failed", "stopReason": "lost", "verdict": "error", "verdictReasons": [
            {"kind": "error", "message": "Locust was lost", "source": "locust"}]},
         "ERROR", "error", "error"),
        ({"verdict": "failed", "verdictReasons": [
            {"kind": "no_success", "message": "every one of the 10 requests failed"}]},
         "FAILED", "failure", "no_success"),
    ],
)
def test_aborted_error_and_no_success_in_html_and_junit(
    store: Store, fields: dict[str, object], badge: str, tag: str, kind: str
) -> None:
    test = make_test()
    run = make_run(test, thresholdResults=_results(True), **fields)
    store_all(store.db, test, [run])
    data = reports.gather(store, run.id)
    html = reports.render_html(data)
    assert f'class="badge {badge.lower()}">{badge}</span>' in html
    message = run.verdictReasons[0].message
    assert f"<li>{message}</li>" in html
    suite = ET.fromstring(junit.junit_xml(data)).find("testsuite")
    assert suite is not None
    case = next(suite.iter("testcase"))
    assert case.get("name") == f"run {run.name}"
    element = case.find(tag)
    assert element is not None and message in (element.get("message") or "")
    assert tag != "failure" or element.get("type") == kind
    counts = (suite.get("failures"), suite.get("errors"))
    assert counts == (("0", "1") if tag == "error" else ("1", "0"))


def test_a_passed_run_says_every_check_held(store: Store) -> None:
    test = make_test()
    run = make_run(test, thresholdResults=_results(True, True), verdict="passed")
    store_all(store.db, test, [run])
    html = reports.render_html(reports.gather(store, run.id))
    assert "<li>every check held (2 thresholds)</li>" in html


def test_junit_is_well_formed_whatever_the_names(store: Store) -> None:
    test = make_test("t\x00\x01")
    result = ThresholdResult(
        expression=f"{HOSTILE}\x02:p95<1", metric="p95", op="<", limit=1, actual=None,
        passed=False,
    )
    run = make_run(test, name=HOSTILE, thresholdResults=[result])
    store_all(store.db, test, [run])
    text = junit.junit_xml(reports.gather(store, run.id))
    case = ET.fromstring(text).find("testsuite/testcase")
    assert case is not None and "\\x02" in (case.get("name") or "")
    failure = case.find("failure")
    assert failure is not None and "no value" in (failure.get("message") or "")


def test_svg_chart() -> None:
    svg = line_chart("RPS <x>", [(0, 1.0), (5, None), (10, 3.0), (15, 4.0)])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "RPS &lt;x&gt;" in svg and "<x>" not in svg
    assert svg.count("<path") == 1 and svg.count("<circle") == 1  # the gap splits the line
    assert "xmlns" not in svg and "http" not in svg
    assert "no data" in line_chart("empty", [])
    assert (nice_ceiling(0), nice_ceiling(7), nice_ceiling(120), nice_ceiling(0.3)) == (
        1.0, 10.0, 200.0, 0.5,
    )
    assert (elapsed_label(65), elapsed_label(3725)) == ("1:05", "1:02:05")


def test_terminal_charts() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([None, 1.0]) == "·▁"
    assert sparkline([]) == ""
    assert len(resample(list(range(1000)), 50)) == 50
    assert resample([1.0, None], 4) == [1.0, 1.0, None, None]
    assert resample([None, None, 2.0, 4.0], 2) == [None, 3.0]
    rows = bar_rows([0.0, 5.0, 10.0, None], height=2, top=10.0)
    assert rows == ["  █ ", " ██·"]
    assert chart_floor(0, 10) == 0 and chart_floor(120, 150) == 105


def test_a_change_that_is_not_significant_is_inconclusive_in_html_and_junit(
    store: Store,
) -> None:
    """+50 % on runs whose intervals say nothing (too few of them): not a failure, not a
    pass. The report shows "not significant", JUnit skips the case, the verdict is
    inconclusive."""
    test = make_test()
    base = make_run(test, final=final_stats(p95=100.0))
    run = make_run(test, final=final_stats(p95=150.0))
    few = steady_intervals(run, 3)
    store_all(store.db, test, [base, run], [*steady_intervals(base), *few])
    compare.set_baseline(store, test.id, base.id, "tester")
    updated = compare.apply_baseline(store, run, {"p95": 0.10})
    assert updated.verdict is not None and updated.verdict.value == "inconclusive"
    (reason,) = updated.verdictReasons
    assert "too few steady intervals to test (12 and 3" in reason.message
    data = reports.gather(store, run.id)
    html = reports.render_html(data)
    assert '<td class="doubt">not significant</td>' in html and "too few intervals" in html
    assert '<span class="badge inconclusive">INCONCLUSIVE</span>' in html
    suite = ET.fromstring(junit.junit_xml(data)).find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert suite.get("skipped") == "1"
