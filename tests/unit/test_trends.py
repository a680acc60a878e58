"""Change points in a test's history, the trend gate, and their place in the verdict."""

from __future__ import annotations

import math
from typing import Any

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTest, Regression, Scope, Verdict
from loadmgr.models.formatting import format_timestamp
from loadmgr.models.verdicts import VerdictReason, explain
from loadmgr.service.analysis import change_points
from loadmgr.service.analysis.change_points import Detection, detect_shifts
from loadmgr.service.analysis.trend_gate import apply_trend
from loadmgr.service.analysis.trends import (
    TrendOptions,
    build_trend,
    report_trend,
    trend_of,
    trend_options,
)
from loadmgr.service.judging.verdicts import recompute_verdict, verdict_changes
from loadmgr.service.reports.trend_html import render_trend_html
from loadmgr.store import Store
from tests.metrics_data import make_test, store_all
from tests.trend_data import drifting, nightly_runs, noisy, stepped


@pytest.fixture
def store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def _history(store: Store, p95: list[float], **kwargs: Any) -> LoadTest:
    test = make_test("checkout")
    store_all(store.db, test, nightly_runs(test, p95, **kwargs))
    return test


# -- the search ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_a_step_is_found_at_its_run(seed: int) -> None:
    shifts = detect_shifts(stepped(40, 25, seed), Detection())
    assert len(shifts) == 1
    assert abs(shifts[0].index - 25) <= 1
    assert shifts[0].after > shifts[0].before * 1.2


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("count", [30, 45, 60])
def test_noise_of_ten_percent_is_no_change(seed: int, count: int) -> None:
    assert detect_shifts(noisy(count, seed, noise=0.10), Detection()) == []


@pytest.mark.parametrize("seed", range(10))
def test_a_slow_drift_is_no_change(seed: int) -> None:
    # 0.1% a run: 4% over 40 runs, under the default minimum change of 5%.
    assert detect_shifts(drifting(40, seed), Detection()) == []


def test_the_same_series_gives_the_same_answer() -> None:
    series = stepped(60, 20, seed=7)
    assert detect_shifts(series, Detection()) == detect_shifts(list(series), Detection())


def test_a_minimum_change_above_the_step_keeps_nothing() -> None:
    assert detect_shifts(stepped(40, 25, 1, factor=1.3), Detection(min_change=0.5)) == []


def test_constant_and_short_series_have_no_change() -> None:
    assert detect_shifts([100.0] * 40, Detection()) == []
    assert detect_shifts([100.0, 200.0, 100.0], Detection()) == []
    assert detect_shifts([], Detection()) == []


def test_detection_of_1000_points_is_fast() -> None:
    import time

    series = stepped(1000, 600, seed=2)
    began = time.perf_counter()
    shifts = detect_shifts(series, Detection())
    assert time.perf_counter() - began < 1.0
    assert [abs(s.index - 600) <= 1 for s in shifts] == [True]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("low", 0.5), ("MEDIUM", 1.0), (" high ", 2.0), ("3", 3.0), ("0.25", 0.25)],
)
def test_sensitivity(text: str, expected: float) -> None:
    assert change_points.parse_sensitivity(text) == expected


@pytest.mark.parametrize("text", ["", "max", "0", "-1", "nan", "inf", "101"])
def test_bad_sensitivity(text: str) -> None:
    with pytest.raises(ValidationFailed, match="--sensitivity"):
        change_points.parse_sensitivity(text)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"metrics": ["p42"]}, "unknown --metric 'p42'"),
        ({"metrics": ["max"]}, "unknown --metric 'max'"),
        ({"last": 0}, "invalid --last 0"),
        ({"last": -3}, "invalid --last -3"),
        ({"p_value": "0"}, "invalid --p-value '0'"),
        ({"p_value": "0.9"}, "invalid --p-value '0.9'"),
        ({"min_change": "abc"}, "invalid --min-change 'abc'"),
        ({"min_change": "-5%"}, "invalid --min-change '-5%'"),
        ({"request": "  "}, "invalid --request"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        trend_options(**kwargs)
    assert named in caught.value.message


def test_options_round_trip_through_a_run_document() -> None:
    options = trend_options(metrics=["P99", "rps", "p99"], sensitivity="high", min_change="10%")
    assert options.metrics == ("p99", "rps")
    again = TrendOptions.from_document(options.to_document())
    assert again.metrics == options.metrics and again.detection == options.detection
    assert TrendOptions.from_document({"metrics": ["?"], "pValue": "x", "last": -1}) == (
        TrendOptions()
    )


# -- a test's history ----------------------------------------------------------------------


def test_trend_finds_the_step_run_of_a_stored_history(store: Store) -> None:
    test = _history(store, stepped(40, 25, seed=3))
    trend = trend_of(store, "checkout", trend_options(last=40))
    (change,) = trend.change_points
    assert change.metric == "p95" and abs(change.index - 25) <= 1
    assert change.regression and change.relative_change > 0.2
    assert trend.runs[change.index].id == change.run_id
    assert [c.metric for c in trend.regressions_now()] == ["p95"]
    rows = [row for row in trend.rows() if row["metric"] == "p95"]
    assert [row["position"] for row in rows] == list(range(1, 41))
    assert [row["startsRegime"] for row in rows].count(True) == 1
    start = rows[change.index]
    assert start["meanBefore"] == pytest.approx(change.before)
    assert start["regression"] is True and start["relativeChange"] > 0.2
    assert rows[-1]["regimeMean"] == pytest.approx(change.after)
    assert test.id and all(row["comparable"] for row in rows)


def test_last_takes_the_newest_runs(store: Store) -> None:
    _history(store, stepped(40, 25, seed=3))
    trend = trend_of(store, "checkout", trend_options(last=10))
    assert [run.name for run in trend.runs] == [f"checkout night {n}" for n in range(31, 41)]
    assert trend.change_points == []  # the step is out of the window: nothing to see


@pytest.mark.parametrize(
    ("metric", "factor", "regression"),
    [("p95", 1.3, True), ("p95", 0.7, False), ("rps", 0.7, True), ("rps", 1.3, False)],
)
def test_direction_of_a_regression(
    store: Store, metric: str, factor: float, regression: bool
) -> None:
    series = stepped(40, 20, seed=5, factor=factor)
    steady = noisy(40, 9, noise=0.02)
    if metric == "p95":
        _history(store, series)
    else:
        _history(store, steady, rps=series)
    trend = trend_of(store, "checkout", trend_options(last=40, metrics=[metric]))
    (change,) = trend.change_points
    assert change.regression is regression
    assert bool(trend.regressions_now()) is regression


def test_error_rate_from_zero_is_a_regression(store: Store) -> None:
    test = make_test("checkout")
    runs = nightly_runs(test, noisy(36, 1, noise=0.02))
    for night, run in enumerate(runs):
        totals = run.finalStats["totals"]  # type: ignore[index]
        totals["failures"] = 0 if night < 30 else 500 + night
        totals["errorRate"] = totals["failures"] / totals["requests"]
    store_all(store.db, test, runs)
    trend = trend_of(store, "checkout", trend_options(last=36, metrics=["error_rate"]))
    (change,) = trend.change_points
    assert change.index == 30 and change.regression and math.isinf(change.relative_change)
    assert trend.rows()[30]["relativeChange"] is None  # JSON has no infinity


def test_runs_of_another_load_are_shown_but_not_searched(store: Store) -> None:
    # Nights 10-12 ran with 50 users and were much slower: that is not a regression.
    series = noisy(40, 4)
    for night in (10, 11, 12):
        series[night] *= 2
    loads = {night: {"targetUsers": 50} for night in (10, 11, 12)}
    _history(store, series, loads=loads)
    trend = trend_of(store, "checkout", trend_options(last=40))
    assert trend.incomparable == 3
    assert [run.comparable for run in trend.runs].count(False) == 3
    assert trend.change_points == []
    rows = [row for row in trend.rows() if row["metric"] == "p95"]
    assert rows[10]["comparable"] is False and rows[10]["regimeMean"] is None
    assert rows[10]["targetUsers"] == 50 and rows[9]["targetUsers"] == 20


def test_one_request_series(store: Store) -> None:
    _history(store, stepped(40, 25, seed=3))
    trend = trend_of(store, "checkout", trend_options(last=40, request="GET /api/items"))
    assert [c.metric for c in trend.change_points] == ["p95"]
    with pytest.raises(ValidationFailed, match="has a request 'GET /nope'"):
        trend_of(store, "checkout", trend_options(request="GET /nope"))


def test_an_empty_history(store: Store) -> None:
    store_all(store.db, make_test("checkout"))
    trend = trend_of(store, "checkout", trend_options())
    assert trend.runs == [] and trend.rows() == [] and trend.regressions_now() == []
    assert "No finished run" in render_trend_html(trend)


def test_without_ruptures_a_trend_is_a_usage_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(change_points, "ruptures_installed", lambda: False)
    with pytest.raises(ValidationFailed) as caught:
        trend_of(store, "checkout", trend_options())
    assert caught.value.message == "trends need the optional 'trend' extra"
    assert caught.value.hint == (
        "pip install 'loadmgr[trend]' (in a clone of loadmgr: pip install -e '.[trend]')"
    )


def test_the_page_links_every_run_and_marks_the_change(store: Store) -> None:
    _history(store, stepped(40, 25, seed=3))
    trend = trend_of(store, "checkout", trend_options(last=40))
    page = render_trend_html(trend)
    for run in trend.runs:
        assert f'id="run-{run.id}"' in page and f'href="#run-{run.id}"' in page
    assert page.count('class="change-point"') == 1
    # Each run's date as every output writes dates (the axis alone keeps a short form).
    first = trend.runs[0].createdAt
    assert f"<td>{format_timestamp(first)}</td>" in page and f"({format_timestamp(first)})" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_the_page_escapes_what_the_database_says(store: Store) -> None:
    test = make_test("<script>alert(1)</script>")
    store_all(store.db, test, nightly_runs(test, noisy(8, 1)))
    page = render_trend_html(build_trend(test, [], TrendOptions()))
    assert "<script>alert" not in page and "&lt;script&gt;" in page


# -- the gate and the verdict --------------------------------------------------------------


def test_apply_trend_fails_a_run_in_a_regressed_regime(store: Store) -> None:
    test = _history(store, stepped(40, 30, seed=3))
    newest = store.runs.find_by_id(store.runs.history(test.id, ["id"], limit=1)[0]["id"])
    assert newest is not None
    judged = apply_trend(store, newest, TrendOptions(last=40).to_document())
    assert judged.verdict == Verdict.FAILED
    checks = {check["metric"]: check for check in judged.trendChecks or []}
    assert set(checks) == {"p95", "rps", "error_rate"}
    assert checks["p95"]["regressed"] and checks["p95"]["worseBy"] > 0.2
    assert checks["p95"]["changeRunId"] and not checks["rps"]["regressed"]
    (reason,) = judged.verdictReasons
    assert reason.kind.value == "trend" and "worse than its trend" in reason.message
    assert recompute_verdict(judged.model_dump(mode="python")) == (
        judged.verdict,
        judged.verdictReasons,
    )
    label, lines = explain(judged.model_dump(mode="json"))
    assert label == "failed (p95 vs trend)" and "its trend" in lines[0]


def test_apply_trend_passes_a_steady_run(store: Store) -> None:
    test = _history(store, noisy(40, 2))
    newest_id = store.runs.history(test.id, ["id"], limit=1)[0]["id"]
    newest = store.runs.find_by_id(newest_id)
    assert newest is not None
    judged = apply_trend(store, newest, {})
    assert judged.verdict == Verdict.PASSED and judged.verdictReasons == []
    assert all(not check["regressed"] for check in judged.trendChecks or [])
    _, lines = explain(judged.model_dump(mode="json"))
    assert lines == ["every check held (3 metrics against its trend)"]


def test_apply_trend_judges_the_run_against_what_came_before_it(store: Store) -> None:
    test = _history(store, stepped(40, 30, seed=3))
    # The run before the step, judged now: later runs do not count.
    older = store.runs.history(test.id, ["id"], limit=20)[-1]["id"]
    run = store.runs.find_by_id(older)
    assert run is not None
    assert apply_trend(store, run, {}).verdict == Verdict.PASSED


def test_report_trend_ends_at_the_run(store: Store) -> None:
    test = _history(store, stepped(40, 30, seed=3))
    older = store.runs.history(test.id, ["id"], limit=15)[-1]["id"]
    run = store.runs.find_by_id(older)
    assert run is not None
    trend = report_trend(store, run)
    assert trend is not None and trend.runs[-1].id == run.id and trend.searched


@pytest.mark.parametrize(("branch", "reference"), [("main", "main's current regime"),
                                                   (None, "its trend"), ("", "its trend")])
def test_a_trend_check_names_the_branch_it_was_judged_against(
    branch: str | None, reference: str
) -> None:
    check = {"metric": "p95", "baseline": 150.0, "actual": 200.0, "worseBy": 1 / 3,
             "allowed": 0.1, "regressed": True, "againstBranch": branch}
    doc = {"status": "Finished", "stopReason": "duration", "trendChecks": [check]}
    verdict, reasons = recompute_verdict(doc)
    assert verdict == Verdict.FAILED
    assert f"p95 is 33.3% worse than {reference} (" in reasons[0].message, reasons[0].message


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=3),
        st.lists(
            st.one_of(
                st.none(),
                st.integers(),
                st.fixed_dictionaries(
                    {"metric": st.sampled_from(["p95", "rps"])},
                    optional={
                        "regressed": st.booleans(),
                        "worseBy": st.one_of(st.none(), st.floats(allow_nan=True)),
                        "allowed": st.one_of(st.none(), st.floats(0, 1), st.text(max_size=2)),
                    },
                ),
            ),
            max_size=3,
        ),
    )
)
def test_recompute_reads_any_stored_trend_checks(items: Any) -> None:
    doc = {"status": "Finished", "stopReason": "duration", "trendChecks": items}
    verdict, reasons = recompute_verdict(doc)
    assert recompute_verdict({**doc, **verdict_changes(verdict, reasons)})[0] == verdict
    regressed = isinstance(items, list) and any(
        Regression.from_document(item) is not None and Regression.from_document(item).regressed  # type: ignore[union-attr]
        for item in items
    )
    assert (verdict == Verdict.FAILED) is regressed


@pytest.mark.parametrize(
    ("verdict", "reason", "kept"),
    [
        (Verdict.INCONCLUSIVE, "generator", False),  # it measured its saturated generator
        (Verdict.ABORTED, "aborted", False),  # another length of load
        (Verdict.INCONCLUSIVE, "baseline", True),  # not significant: a fine sample
        (Verdict.PASSED, "generator", True),  # passed though saturated: only worse numbers
        (Verdict.FAILED, "threshold", True),
    ],
)
def test_which_runs_are_samples_of_the_trend(
    store: Store, verdict: Verdict, reason: str, kept: bool
) -> None:
    """Runs whose numbers measured something else than the service are left out of the
    series (and so of every regime); the others are points of it."""
    test = make_test("checkout")
    runs = nightly_runs(test, noisy(30, 4))
    odd = {10, 11, 12, 13}
    reasons = [VerdictReason.model_validate(
        {"kind": reason, "message": "m", "warning": reason == "generator" and kept})]
    for index in odd:  # far above the others: a step if they were read
        runs[index] = runs[index].model_copy(update={"verdict": verdict,
                                                     "verdictReasons": reasons})
        runs[index].finalStats["totals"]["p95ResponseMs"] = 400.0  # type: ignore[index]
    store_all(store.db, test, runs)
    trend = trend_of(store, "checkout", TrendOptions(metrics=("p95",)))
    shown = {run.id for run in trend.runs}
    assert all((runs[i].id in shown) == kept for i in odd)
    assert len(trend.runs) == (30 if kept else 26)


def test_an_aborted_run_is_not_judged_against_its_trend(store: Store) -> None:
    test = _history(store, noisy(40, 2))
    newest = store.runs.find_by_id(store.runs.history(test.id, ["id"], limit=1)[0]["id"])
    assert newest is not None
    aborted = newest.model_copy(update={"verdict": Verdict.ABORTED})
    with pytest.raises(ValidationFailed, match="stopped early"):
        apply_trend(store, aborted, {})


def test_a_requested_trend_check_is_judged_with_the_end(store: Store) -> None:
    """The collector judges the trend before it stores the end (service/lifecycle/end.py): the
    newest run, not yet stored as ended, joins the history it is judged against."""
    from loadmgr.service.lifecycle.end import judged_checks

    test = _history(store, stepped(40, 30, seed=3))
    newest_id = store.runs.history(test.id, ["id"], limit=1)[0]["id"]
    newest = store.runs.find_by_id(newest_id)
    assert newest is not None
    store.runs.update(newest_id, {"status": "Running", "finalStats": None})
    ended = newest.model_copy(update={"requestedChecks": {"trend": TrendOptions().to_document()}})
    said: list[str] = []
    changes = judged_checks(store, ended, said.append)
    assert changes["verdict"] == "failed" and changes["trendChecks"]
    assert said == [changes["verdictReasons"][0]["message"].join(["regression: ", ""])]
    assert "than its trend" in said[0]


def test_the_terminal_view_of_a_long_history(store: Store) -> None:
    from rich.console import Console

    from loadmgr.cli.tests.trend_views import TABLE_ROWS, trend_view

    _history(store, stepped(TABLE_ROWS + 20, 50, seed=4))
    trend = trend_of(store, "checkout", trend_options(last=1000))
    console = Console(width=100, record=True, color_system=None)
    console.print(trend_view(trend, 100))
    text = console.export_text()
    assert "20 older runs are in the charts, not the table" in text
    assert text.count("2026-") >= TABLE_ROWS and "▲ p95" in text


def test_a_check_it_cannot_do_never_crashes_the_end_and_all_are_still_told(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stored limit that is no number (any program may write a run), or a bug in a check,
    # must not crash the collector as it records the end: the run, the schedule and the
    # webhooks would never hear of it.
    from loadmgr.service.lifecycle import end as run_end
    from loadmgr.service.notifications import subscriptions as notifications

    told: list[str] = []
    monkeypatch.setattr(notifications, "notify_run_end", lambda _s, run, _m: told.append(run.id))
    test = _history(store, noisy(10, 2))
    newest_id = store.runs.history(test.id, ["id"], limit=1)[0]["id"]
    newest = store.runs.find_by_id(newest_id)
    assert newest is not None
    said: list[str] = []
    asked = newest.model_copy(update={"requestedChecks": {"baseline": {"p95": "ten"}}})
    assert run_end.judged_checks(store, asked, said.append) == {}
    assert said == ["not compared with the baseline: the stored limit of 'p95' is not a number"]

    def broken(*_args: Any) -> None:
        raise KeyError("https://hooks.example/secret")  # its text must not be shown

    monkeypatch.setattr("loadmgr.service.analysis.trend_gate.trend_changes", broken)
    monkeypatch.setattr("loadmgr.service.scheduling.schedules.schedule_run_ended", broken)
    asked = newest.model_copy(update={"requestedChecks": {"trend": TrendOptions().to_document()}})
    said.clear()
    assert run_end.judged_checks(store, asked, said.append) == {}
    store.runs.update(newest_id, {"endSteps": "pending"})
    ended = run_end.run_ended(store, newest, said.append)
    assert said == [
        "not compared with its trend: unexpected KeyError",
        "could not update the run's schedule: unexpected KeyError",
    ]
    assert told == [newest_id] and ended.verdict == newest.verdict


def test_a_chart_never_labels_its_top_and_bottom_alike(store: Store) -> None:
    """14.28/s and 14.30/s: rows labelled 14.3/s, 14.3/s… say nothing; the bars start at
    zero then, and look alike, as the numbers are."""
    from rich.console import Console

    from loadmgr.cli.tests.trend_views import trend_view

    _history(store, [50.0, 80.0, 50.0, 80.0], rps=[14.28, 14.30, 14.28, 14.30])
    console = Console(width=80, record=True, color_system=None)
    console.print(trend_view(trend_of(store, "checkout", trend_options()), 80))
    text = console.export_text()
    rps_chart = text.split("requests per second")[1].split("error rate")[0]
    labels = [
        line.split("┤" if "┤" in line else "└")[0].strip()
        for line in rps_chart.splitlines()
        if "┤" in line or "└" in line
    ]
    shown = [label for label in labels if label]
    assert len(shown) == len(set(shown)) and shown[-1] == "0.0/s", labels


def test_a_near_flat_series_raises_no_library_warning() -> None:
    """Issue 20, item 10: scipy's "Precision loss … nearly identical" leaked on stderr."""
    import warnings

    from loadmgr.service.analysis.change_points import Detection, detect_shifts

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert detect_shifts([100.0] * 10 + [100.00000001] * 10, Detection()) == []
    assert [str(w.message) for w in shown] == []
