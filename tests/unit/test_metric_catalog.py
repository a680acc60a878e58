"""The metric catalog walked: each metric is judged, aborted on, compared, trended and shown
wherever its entry says, read from the keys its entry names.

The stored documents below are built from the catalog itself, so a metric added to it is
checked by these tests with no change to them (docs/metrics.md, "Adding a metric"): only
the pinned orders at the end name metrics, since outputs depend on them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import mongomock
import pytest
from rich.console import Console

from loadmgr.cli.metrics.views import summary_view
from loadmgr.cli.tests.history import TREND_METRICS as CLI_TREND_METRICS
from loadmgr.cli.tests.trend_views import metric_chart
from loadmgr.models import Scope, parse_threshold
from loadmgr.models.formatting import format_metric, side_by_side, threshold_value
from loadmgr.models.histogram import summary
from loadmgr.models.stats import catalog
from loadmgr.models.stats.catalog import METRICS, Metric
from loadmgr.models.stats.stored import METRIC_KEYS, clean_stats, metric_value
from loadmgr.models.thresholds import LATENCY_METRICS
from loadmgr.models.thresholds import METRICS as THRESHOLD_METRICS
from loadmgr.service.analysis import compare
from loadmgr.service.analysis.trends import (
    TREND_METRICS,
    TrendOptions,
    TrendRun,
    build_trend,
    trend_options,
)
from loadmgr.service.judging.abort_judge import OK, AbortJudge
from loadmgr.service.judging.verdicts import evaluate
from loadmgr.service.reports.run_html import ReportData, render_html
from loadmgr.service.reports.trend_html import trend_chart
from loadmgr.store import Store
from tests.metrics_data import make_run, make_test, steady_intervals, store_all

REQUEST = ("GET", "/x")
SCOPE = "GET /x"
# A value of each unit, and a threshold it passes.
VALUES: dict[str, float] = {"ms": 100.0, "fraction": 0.02, "/s": 40.0, "count": 1000.0}
PASSING = {"ms": "<500ms", "fraction": "<5%", "/s": ">=10", "count": "<5000"}


def by(flag: str) -> list[Metric]:
    return [m for m in METRICS if getattr(m, flag)]


def ids(metrics: list[Metric]) -> list[str]:
    return [m.name for m in metrics]


def value_of(m: Metric) -> float:
    return VALUES[m.unit]


def stored_stats(scale: float = 1.0) -> dict[str, Any]:
    """`finalStats` with every catalog metric in its totals and in one request's item."""
    totals = {m.total_key: value_of(m) * scale for m in METRICS}
    item = {m.request_key: value_of(m) * scale for m in METRICS}
    return {"totals": totals, "requestStats": [{"method": REQUEST[0], "name": REQUEST[1], **item}]}


def expression(m: Metric, scope: str | None = None) -> str:
    return f"{scope + ':' if scope else ''}{m.name}{PASSING[m.unit]}"


# -- the catalog itself --------------------------------------------------------------------


def test_names_and_keys_are_each_one_metric_s() -> None:
    for keys in (
        [m.name for m in METRICS],
        [m.total_key for m in METRICS],
        [m.request_key for m in METRICS],
        [m.interval_total_key for m in METRICS],
    ):
        assert len(set(keys)) == len(keys), keys


@pytest.mark.parametrize("m", METRICS, ids=ids(list(METRICS)))
def test_an_entry_is_consistent(m: Metric) -> None:
    assert catalog.metric(m.name) is m
    assert m.title and m.name.islower()
    assert (m.quantile is not None) == (m.abort == "quantile")
    if m.quantile is not None:
        assert 0 < m.quantile < 1 and m.unit == "ms"
    if m.abort:
        assert m.judged, "judged as a run goes on, but no threshold may name it"
    if m.trended or m.outlier:
        assert m.compared and m.better, "a trend or an outlier needs a better side"
    if m.summary:
        assert m.unit == "ms", "a summary's latencies are in ms"


@pytest.mark.parametrize("m", METRICS, ids=ids(list(METRICS)))
def test_stored_keys_read_as_numbers(m: Metric) -> None:
    # What another program wrote there reads as unknown, never as text or NaN.
    odd = {"totals": {m.total_key: "fast"}, "requestStats": [{"name": "/x", m.request_key: "x"}]}
    cleaned = clean_stats(odd)
    assert cleaned["totals"][m.total_key] is None
    assert cleaned["requestStats"][0][m.request_key] is None
    assert metric_value(stored_stats(), m.name) == value_of(m)
    assert metric_value(stored_stats(), m.name, SCOPE) == value_of(m)


def test_percentiles_are_the_histogram_s() -> None:
    numbers = summary({100: 10})
    assert all(numbers[m.name] == 100.0 for m in catalog.QUANTILES)


# -- judged: thresholds ----------------------------------------------------------------------


@pytest.mark.parametrize("m", by("judged"), ids=ids(by("judged")))
def test_a_threshold_on_it_parses_and_holds(m: Metric) -> None:
    threshold = parse_threshold(expression(m))
    assert threshold.metric == m.name
    results = evaluate([expression(m), expression(m, SCOPE)], stored_stats())
    assert [r.actual for r in results] == [value_of(m)] * 2
    assert all(r.passed for r in results)
    assert threshold_value(threshold, value_of(m)) != "no value"


def test_only_judged_metrics_take_a_threshold() -> None:
    for m in METRICS:
        if not m.judged:
            with pytest.raises(ValueError, match="unknown metric"):
                parse_threshold(expression(m))


# -- aborted on: judged as the run goes --------------------------------------------------------


def interval_doc(m: Metric) -> dict[str, Any]:
    """One interval of 200 requests (4 failed) in 5 s, every value of `m`'s unit."""
    counts = {"intervalRequests": 200, "intervalFailures": 4}
    hist = "100:200"
    item = {"method": REQUEST[0], "name": REQUEST[1], **counts, "hist": hist}
    item.update({x.request_key: value_of(x) for x in METRICS if x.unit == m.unit})
    item["requestsPerSec"] = 40.0
    doc = {**counts, "intervalSec": 5.0, "hist": hist, "requestStats": [item]}
    doc.update({x.interval_total_key: value_of(x) for x in METRICS if x.unit == m.unit})
    return doc


@pytest.mark.parametrize("m", by("abort"), ids=ids(by("abort")))
@pytest.mark.parametrize("scope", [None, SCOPE])
def test_it_is_judged_on_intervals(m: Metric, scope: str | None) -> None:
    judge = AbortJudge(
        [expression(m, scope)],
        window_intervals=1,
        min_requests=1,
        confidence=None,
        spawn_complete=True,
    )
    assert judge.observe(interval_doc(m)) is None
    (state,) = judge.states()
    assert state.state == OK
    assert state.value == pytest.approx(value_of(m))


# -- compared: `metrics compare` and baseline checks ---------------------------------------


@pytest.fixture
def store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def test_each_compared_metric_is_a_row(store: Store) -> None:
    test = make_test()
    base = make_run(test, final=stored_stats())
    run = make_run(test, final=stored_stats(scale=2.0))
    store_all(store.db, test, [base, run], [*steady_intervals(base), *steady_intervals(run)])
    rows = compare.compare_runs(store, [base.id, run.id]).rows
    for request in (compare.TOTAL, SCOPE):
        shown = [r for r in rows if r["request"] == request and r["position"] == 1]
        assert [r["metric"] for r in shown] == ids(by("compared"))
        for row, m in zip(shown, by("compared"), strict=True):
            assert row["baseline"] == value_of(m) and row["value"] == 2 * value_of(m)
            # Worse when it doubled, unless higher is better or it is a count.
            judged = m.better is not None and not m.outlier
            assert row["regression"] == (judged and m.better == "lower"), m.name


@pytest.mark.parametrize("m", by("compared"), ids=ids(by("compared")))
def test_a_regression_is_judged_by_its_direction(store: Store, m: Metric) -> None:
    test = make_test()
    base = make_run(test, final=stored_stats())
    worse = make_run(test, final=stored_stats(scale=2.0 if m.better == "lower" else 0.5))
    if m.better is None:
        with pytest.raises(ValueError, match="unknown metric"):
            compare.parse_max_regression(f"{m.name}=10%")
        return
    assert compare.parse_max_regression(f"{m.name}=10%") == (m.name, pytest.approx(0.10))
    store_all(store.db, intervals=[*steady_intervals(base), *steady_intervals(worse)])
    (check,) = compare.compare_with_baseline(store, base, worse, {m.name: 0.10})
    assert check.baseline == value_of(m) and check.regressed and check.significant


# -- trended: `tests trend` ------------------------------------------------------------------


def trend_runs(count: int = 3) -> list[TrendRun]:
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    return [
        TrendRun(f"run-{i}", f"nightly {i}", start + timedelta(days=i), (20, 5.0, 600, "local"),
                 stored_stats())
        for i in range(count)
    ]


@pytest.mark.parametrize("m", by("trended"), ids=ids(by("trended")))
@pytest.mark.parametrize("request_name", [None, SCOPE])
def test_it_is_a_series_point(m: Metric, request_name: str | None) -> None:
    options = trend_options(metrics=[m.name], request=request_name)
    trend = build_trend(make_test(), trend_runs(), options, search=False)
    (series,) = trend.metrics
    assert series.metric == m.name and series.values == [value_of(m)] * 3


def test_only_trended_metrics_are_a_metric_option() -> None:
    assert CLI_TREND_METRICS == TREND_METRICS
    assert set(TREND_METRICS) == set(ids(by("trended")))
    assert set(TrendOptions().metrics) <= set(TREND_METRICS)


# -- rendered: terminal and HTML ---------------------------------------------------------------


@pytest.mark.parametrize("m", METRICS, ids=ids(list(METRICS)))
def test_its_value_is_written_in_its_unit(m: Metric) -> None:
    text = format_metric(m.name, value_of(m))
    ending = {"ms": "ms", "fraction": "%", "/s": "/s", "count": "0"}[m.unit]
    assert text.endswith(ending), text
    assert side_by_side(m.name, [value_of(m)])[0] == [text]


@pytest.mark.parametrize("m", by("trended"), ids=ids(by("trended")))
def test_its_trend_chart_has_its_title(m: Metric) -> None:
    options = TrendOptions(metrics=(m.name,))
    trend = build_trend(make_test(), trend_runs(), options, search=False)
    (series,) = trend.metrics
    head = metric_chart(trend, series, 60)
    console = Console(record=True, width=100)
    console.print(head)
    assert console.export_text().startswith(m.title)
    assert f'aria-label="{m.heading}"' in trend_chart(trend, series)


def test_a_summary_shows_each_summary_latency() -> None:
    summary_doc = {m.total_key: value_of(m) for m in METRICS}
    console = Console(record=True, width=200)
    console.print(summary_view({"runId": "r", "name": "n", **summary_doc}))
    shown = console.export_text()
    html = render_html(
        ReportData(make_run(make_test()), "checkout", summary_doc, [], [], [])
    )
    for m in by("summary"):
        assert f"{m.name} {format_metric(m.name, value_of(m))}" in shown
        assert f"<dt>Latency {m.name}</dt><dd>{format_metric(m.name, value_of(m))}</dd>" in html


# -- the orders outputs depend on ----------------------------------------------------------


def test_orders_of_what_is_listed() -> None:
    # Rows of `metrics compare` and a summary's latencies: catalog order.
    assert list(compare.COMPARED_METRICS) == [
        "requests", "failures", "error_rate", "rps", "avg", "p50", "p90", "p95", "p99", "max"
    ]
    assert ids(by("summary")) == ["avg", "p50", "p90", "p95", "p99", "max"]
    # Named in messages and --help: percentiles first.
    assert THRESHOLD_METRICS == (
        "p50", "p90", "p95", "p99", "avg", "min", "max", "error_rate", "rps"
    )
    assert LATENCY_METRICS == ("p50", "p90", "p95", "p99", "avg", "min", "max")
    assert compare.REGRESSION_METRICS == (
        "p50", "p90", "p95", "p99", "avg", "max", "error_rate", "rps"
    )
    assert TREND_METRICS == ("p50", "p90", "p95", "p99", "avg", "rps", "error_rate")
    assert METRIC_KEYS["rps"] == ("rps", "requestsPerSec")
