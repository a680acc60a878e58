"""What loadmgr says in words (issue 20, item 17): a Failed run is not "not finished", an
error verdict is not "error (error)", a mistyped group or test name gets a suggestion, dates
are ISO-8601, `tests trend` reads right for runs of one day and for one run, and the HTML
says the sensitivity as the option takes it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import mongomock
import pytest
from rich.console import Console

from loadmgr.config import Settings
from loadmgr.models import Scope
from loadmgr.models.verdicts import ReasonKind, Verdict, VerdictReason, verdict_label
from loadmgr.store import Store
from tests.conftest import CliResult
from tests.metrics_data import make_run, make_test, store_all

Cli = Callable[..., CliResult]


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> Any:
    client: Any = mongomock.MongoClient()

    def open_store(settings: Settings) -> Store:
        return Store(client[settings.database], Scope(settings.tenant, settings.env), "")

    monkeypatch.setattr("loadmgr.service.context.open_store", open_store)
    return client["loadmgr"]


def _failed_run(db: Any) -> Any:
    test = make_test()
    run = make_run(test, status="Failed", verdict="error", finalStats=None, lastMetrics=None,
                   error="cannot reach Locust", stopReason="error",
                   verdictReasons=[{"kind": "error", "message": "cannot reach Locust"}])
    store_all(db, test, [run])
    return test, run


def test_an_error_verdict_is_not_error_error() -> None:
    reason = VerdictReason(kind=ReasonKind.ERROR, message="cannot reach Locust")
    assert verdict_label(Verdict.ERROR, [reason]) == "error"
    sourced = VerdictReason(kind=ReasonKind.ERROR, message="m", source="database")
    assert verdict_label(Verdict.ERROR, [sourced]) == "error (database)"


def test_a_failed_run_is_not_called_unfinished(cli: Cli, db: Any) -> None:
    test, run = _failed_run(db)
    other = make_run(test)
    store_all(db, None, [other])
    compared = cli("metrics", "compare", run.id, other.id)
    assert "not finished" not in compared.stderr, compared.stderr
    assert "ended Failed" in compared.stderr
    series = cli("metrics", "show", run.id, "--view", "timeseries")
    assert series.exit_code == 0, series.stderr
    assert "yet" not in series.stderr and "ended Failed" in series.stderr, series.stderr
    exported = cli("metrics", "export", run.id)
    assert "yet" not in exported.stderr and "ended Failed" in exported.stderr
    for view in ("scatter", "requests"):
        shown = cli("metrics", "show", run.id, "--view", view)
        assert "yet" not in shown.stderr and "ended Failed" in shown.stderr, shown.stderr


@pytest.mark.parametrize(("typed", "meant"), [(["run", "list"], "runs"),
                                              (["test", "list"], "tests")])
def test_a_mistyped_group_gets_a_suggestion(cli: Cli, typed: list[str], meant: str) -> None:
    result = cli(*typed)
    assert result.exit_code == 2
    assert f"Did you mean '{meant}'" in result.stderr, result.stderr


def test_a_mistyped_test_name_gets_a_suggestion(cli: Cli, db: Any) -> None:
    store_all(db, make_test("checkout"))
    result = cli("tests", "show", "chekout")
    assert result.exit_code == 4, result.stderr
    assert "did you mean 'checkout'" in result.stderr, result.stderr
    far = cli("tests", "show", "zzzz")
    assert "did you mean" not in far.stderr


def test_a_run_is_named_with_an_iso_8601_moment() -> None:
    from loadmgr.service.runs import plan

    source = open(plan.__file__, encoding="utf-8").read()
    assert "%Y-%m-%dT%H:%M:%SZ" in source


def _trend(runs: int, day_apart: bool = False) -> Any:
    from loadmgr.service.analysis.trends import MetricTrend, Trend, TrendOptions, TrendRun

    test = make_test()
    start = datetime(2026, 12, 6, 8, 12, 11, tzinfo=timezone.utc)
    step = timedelta(days=1) if day_apart else timedelta(minutes=7)
    made = [
        TrendRun(id=f"{i:08d}-run", name=f"r{i}", createdAt=start + i * step,
                 load=(5, 1.0, 10, "local"), stats={}, comparable=True)
        for i in range(runs)
    ]
    values: list[float | None] = [100.0 + i for i in range(runs)]
    series = MetricTrend(metric="p95", values=values, regime_means=list(values), changes=[],
                         searched=runs)
    return Trend(test=test, runs=made, metrics=[series], options=TrendOptions())


def _text(renderable: Any) -> str:
    console = Console(width=100, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_trend_words_for_one_day_and_one_run() -> None:
    from loadmgr.cli.tests.trend_views import trend_view

    text = _text(trend_view(_trend(3)))
    axis = next(line for line in text.splitlines() if "2026-12-06" in line)
    ends = re.findall(r"\S+", axis)
    assert len(ends) == 2 and ends[0] != ends[1], axis
    assert "▲" not in text  # no change point drawn: none explained
    one = _text(trend_view(_trend(1)))
    assert "1 finished run," in one or "1 finished run\n" in one, one
    days = _text(trend_view(_trend(3, day_apart=True)))
    assert "2026-12-06" in days and "2026-12-08" in days


def test_the_html_says_the_sensitivity_as_a_word() -> None:
    from loadmgr.service.reports.trend_html import render_trend_html

    page = render_trend_html(_trend(3))
    assert "sensitivity medium" in page and "sensitivity 1," not in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", page) is None  # ISO-8601: a T, not a space


def test_trend_marks_tell_regressions_from_improvements_without_colour() -> None:
    from loadmgr.cli.tests.trend_views import BETTER_MARK, CHANGE_MARK, trend_view
    from loadmgr.service.analysis.trends import ChangePoint

    trend = _trend(6)
    worse = ChangePoint("p95", 2, trend.runs[2].id, 100.0, 150.0, 0.001)
    trend.metrics[0].changes.append(worse)
    text = _text(trend_view(trend))
    assert f"{CHANGE_MARK} a regression starts" in text
    assert "improvement" not in text  # none drawn, none explained
    better = ChangePoint("p95", 4, trend.runs[4].id, 150.0, 90.0, 0.001)
    trend.metrics[0].changes.append(better)
    both = _text(trend_view(trend))
    assert f"{BETTER_MARK} an improvement starts" in both and f"  {BETTER_MARK} p95" in both


@pytest.mark.parametrize(("count", "words"), [(1, "1 interval,"), (3, "3 intervals,")])
def test_a_windows_interval_count_is_worded_by_its_number(count: int, words: str) -> None:
    from loadmgr.cli.metrics.views import summary_view

    window = {"fromSec": 5, "toSec": 10, "intervals": count, "seconds": 5}
    text = _text(summary_view({"window": window, "exactPercentiles": True}))
    assert words in text
