"""Server metrics compared and trended like any catalog metric (issue 23): `metrics compare`,
`--max-regression server.NAME=…` against a baseline (judged once the end has read
Prometheus), `tests trend --metric server.NAME`, all reading a run's `serverStats` mean
through the catalog's `server.NAME` entry; a run that did not read one compares as
unknown, never as 0."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import mongomock
import pytest

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTest, LoadTestRun, Scope, ServerMetric, Verdict
from loadmgr.models.stats.catalog import metric as catalog_metric
from loadmgr.service.analysis import compare
from loadmgr.service.analysis.trends import trend_of, trend_options
from loadmgr.service.server_metrics.at_end import ServerMetricsAtEnd
from loadmgr.store import Store
from tests.conftest import CliResult
from tests.metrics_data import START, make_run, make_test, snapshots, steady_intervals, store_all
from tests.trend_data import nightly_runs, stepped
from tests.unit.test_cli_unit import Captured, mock_store  # noqa: F401 - a fixture

Cli = Callable[..., CliResult]
CPU = ServerMetric(name="cpu", query="sum(rate(x[30s]))", source="prom", unit="cores")


@pytest.fixture
def store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def _stats(avg: float | None, reason: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"unit": "cores", "intervals": 6 if avg is not None else 0}
    if avg is not None:
        item.update(avg=avg, min=avg, max=avg, last=avg, p95=avg)
    if reason:
        item["reason"] = reason
    return {"cpu": item}


def _runs(test: LoadTest, *cpus: float | None) -> list[LoadTestRun]:
    return [
        make_run(test, name=f"run {i}", serverMetrics=[CPU], serverStats=_stats(cpu, "down"))
        for i, cpu in enumerate(cpus)
    ]


def test_the_catalog_entry_reads_the_mean_from_a_runs_numbers() -> None:
    run = make_run(make_test(), serverMetrics=[CPU], serverStats=_stats(1.25))
    entry = catalog_metric("server.cpu")
    assert entry.compared and entry.trended and entry.judged
    assert compare.stats_value(run.stats_to_judge, "server.cpu", None) == 1.25
    # What Locust measured stays as stored beside it.
    assert run.stats_to_judge is not None and run.finalStats is not None
    assert (
        run.stats_to_judge["totals"]["p95ResponseMs"] == run.finalStats["totals"]["p95ResponseMs"]
    )


@pytest.mark.parametrize(
    ("after", "tolerance", "regression"),
    [(1.5, 0.05, True), (1.02, 0.05, False), (0.5, 0.05, False), (1.5, 0.6, False)],
)
def test_metrics_compare_has_a_row_per_server_metric(
    store: Store, after: float, tolerance: float, regression: bool
) -> None:
    test = make_test()
    first, second = _runs(test, 1.0, after)
    intervals = [*steady_intervals(first), *steady_intervals(second)]
    store_all(store.db, test, [first, second], intervals)
    result = compare.compare_runs(store, [first.id, second.id], tolerance=tolerance)
    rows = [r for r in result.rows if r["metric"] == "server.cpu"]
    assert [(r["request"], r["value"]) for r in rows] == [
        ("Aggregated", 1.0),
        ("Aggregated", after),
    ]
    assert rows[1]["regression"] is regression
    assert rows[1]["change"] == pytest.approx(after - 1.0)
    # Per request there is no server metric: only the totals have it.
    assert {r["request"] for r in rows} == {"Aggregated"}


def test_a_run_that_could_not_read_it_compares_as_unknown(cli: Cli, mock_store: Captured) -> None:  # noqa: F811
    assert mock_store.client is not None
    test = make_test()
    first, second = _runs(test, 1.0, None)
    store_all(mock_store.client["loadmgr"], test, [first, second])
    result = cli("metrics", "compare", first.id, second.id, "-o", "json")
    assert result.exit_code == 0, result.stderr
    rows = [r for r in result.json() if r["metric"] == "server.cpu"]
    assert [r["value"] for r in rows] == [1.0, None] and not rows[1]["regression"]
    table = cli("metrics", "compare", first.id, second.id)
    assert "server.cpu" in table.stdout and "✗" not in table.stdout


@pytest.mark.parametrize("text", ["server.cpu=10%", " SERVER.cpu = 10 % "])
def test_max_regression_takes_a_server_metric(text: str) -> None:
    assert compare.parse_max_regression(text) == ("server.cpu", pytest.approx(0.10))


@pytest.mark.parametrize("text", ["server.=10%", "server.CPU-x=10%", "server.9=10%", "serv.cpu=1%"])
def test_max_regression_refuses_what_is_no_server_metric(text: str) -> None:
    with pytest.raises(ValueError, match="invalid --max-regression"):
        compare.parse_max_regression(text)


def test_a_baseline_check_on_a_server_metric(store: Store) -> None:
    test = make_test()
    base, run = _runs(test, 1.0, 1.3)
    store_all(store.db, intervals=[*steady_intervals(base), *steady_intervals(run)])
    (check,) = compare.compare_with_baseline(store, base, run, {"server.cpu": 0.10})
    assert (check.metric, check.baseline, check.actual, check.regressed) == (
        "server.cpu",
        1.0,
        1.3,
        True,
    )
    missing = make_run(test, serverMetrics=[CPU], serverStats=_stats(None, "down"))
    (unknown,) = compare.compare_with_baseline(store, base, missing, {"server.cpu": 0.10})
    assert unknown.actual is None and not unknown.regressed


def _requested(store: Store, read: dict[str, Any]) -> LoadTestRun:
    """A run that asked for `--max-regression server.cpu=10%` against a baseline of 1.0
    cores, each interval marked as `read` ({"server": …} or {"serverMissing": …}), once
    its end step has read its server metrics."""
    test = make_test()
    base = make_run(test, name="base", serverMetrics=[CPU], serverStats=_stats(1.0))
    test = test.model_copy(update={"baselineRunId": base.id})
    run = make_run(
        test,
        durationSeconds=80,
        finishedAt=START + timedelta(seconds=80),
        serverMetrics=[CPU],
        requestedChecks={"baseline": {"server.cpu": 0.10}},
        verdict="passed",
    )
    intervals = snapshots(run, 8)  # enough steady intervals to test the change on
    for item in intervals:  # each window read (or marked) live: the end asks nothing
        item.windowEnd = START + timedelta(seconds=10 * item.seq)
        for key, value in read.items():
            setattr(item, key, value)
    store_all(store.db, test, [base, run], [*intervals, *steady_intervals(base)])
    said: list[str] = []
    ServerMetricsAtEnd().after_end(store, store.runs.find_by_id(run.id) or run, said.append)
    judged = store.runs.find_by_id(run.id)
    assert judged is not None and judged.serverStats is not None
    return judged


def test_a_requested_baseline_check_is_judged_once_the_server_metrics_are_read(
    store: Store,
) -> None:
    """`runs start --compare-baseline --max-regression server.cpu=10%`: the end's write
    judged it without server numbers; the end step that reads them judges it again."""
    judged = _requested(store, {"server": {"cpu": 2.0}})
    assert judged.serverStats["cpu"]["avg"] == 2.0
    assert judged.verdict == Verdict.FAILED
    assert judged.baselineChecks and judged.baselineChecks[0]["metric"] == "server.cpu"
    assert any("server.cpu" in r.message for r in judged.verdictReasons)


def test_a_baseline_check_on_a_server_metric_never_read_is_an_error(store: Store) -> None:
    """Missing data never passes a gate: the verdict is `error`, with the reason."""
    judged = _requested(store, {"serverMissing": {"cpu": "Prometheus was too slow"}})
    assert judged.serverStats is not None and "avg" not in judged.serverStats["cpu"]
    assert judged.verdict == Verdict.ERROR
    # The end asked again (its source is gone here): the latest reason is told.
    assert judged.verdictReasons[0].message == (
        "server.cpu could not be read: source 'prom' not found"
    )


def test_tests_trend_reads_a_server_metric(store: Store) -> None:
    test = make_test("checkout")
    cpus = stepped(30, 20, seed=4)
    runs = nightly_runs(test, [100.0] * 30)
    runs = [
        run.model_copy(update={"serverMetrics": [CPU], "serverStats": _stats(cpu / 100)})
        for run, cpu in zip(runs, cpus, strict=True)
    ]
    store_all(store.db, test, runs)
    trend = trend_of(store, "checkout", trend_options(metrics=["server.cpu"], last=30))
    (series,) = trend.metrics
    assert series.metric == "server.cpu"
    assert series.values == pytest.approx([c / 100 for c in cpus])
    (change,) = series.changes
    assert abs(change.index - 20) <= 1 and change.regression  # more CPU is worse


def test_tests_trend_names_server_metrics_it_takes(cli: Cli, mock_store: Captured) -> None:  # noqa: F811
    assert mock_store.client is not None
    test = make_test("api")
    store_all(mock_store.client["loadmgr"], test, _runs(test, 1.0, 2.0))
    shown = cli("tests", "trend", "api", "--metric", "server.cpu", "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    assert sorted(r["value"] for r in shown.json()) == [1.0, 2.0]
    bad = cli("tests", "trend", "api", "--metric", "server.", "-o", "json")
    assert bad.exit_code == 2 and "server.NAME" in bad.stderr
    with pytest.raises(ValidationFailed):
        trend_options(metrics=["server.CPU!"])


def test_a_threshold_on_a_server_metric_never_read_is_an_error_told_and_handed_on(
    store: Store,
) -> None:
    """The end's write judged `server.cpu<1.5` without server numbers (failed: no value);
    the end step finds it could never be read: the verdict is `error` with the reason, it
    is told, and the run the steps hand on (to the CLI's output and exit code, to the
    schedule and the webhooks after it) is that one."""
    from loadmgr.models import ThresholdResult, parse_threshold
    from loadmgr.service.collection.end_steps import run_end_steps

    test = make_test()
    threshold = parse_threshold("server.cpu<1.5")
    run = make_run(
        test,
        durationSeconds=30,
        finishedAt=START + timedelta(seconds=30),
        serverMetrics=[CPU],
        thresholds=["server.cpu<1.5"],
        thresholdResults=[ThresholdResult.of(threshold, None)],
        verdict="failed",
        endSteps="pending",
    )
    intervals = snapshots(run, 3)
    for item in intervals:
        item.windowEnd = START + timedelta(seconds=10 * item.seq)
        item.serverMissing = {"cpu": "cannot reach Prometheus: connection refused"}
    store_all(store.db, test, [run], intervals)
    said: list[str] = []
    handed = run_end_steps([ServerMetricsAtEnd()], store, run, said.append)
    assert handed.verdict == Verdict.ERROR
    assert handed.verdictReasons[0].message.startswith("server.cpu could not be read: ")
    assert any(line.startswith("verdict error with the server metrics read") for line in said)
    assert store.runs.find_by_id(run.id).verdict == Verdict.ERROR  # type: ignore[union-attr]
