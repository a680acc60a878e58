"""Comparisons, baselines and regressions on mongomock."""

from __future__ import annotations

import math

import mongomock
import pytest

from loadmgr.errors import Conflict, NotFound, ValidationFailed
from loadmgr.models import LoadTest, Scope
from loadmgr.service.analysis import compare
from loadmgr.store import Store
from tests.metrics_data import final_stats, make_run, make_test, steady_intervals, store_all


@pytest.fixture
def store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def _stored_test(store: Store, name: str = "checkout") -> LoadTest:
    test = make_test(name)
    store_all(store.db, test)
    return test


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p95=10%", ("p95", 0.10)),
        (" P99 = 2.5 % ", ("p99", 0.025)),
        ("error_rate=0%", ("error_rate", 0.0)),
        ("rps=150%", ("rps", 1.5)),
        ("avg=5%", ("avg", 0.05)),
        ("max=100%", ("max", 1.0)),
    ],
)
def test_parse_max_regression(text: str, expected: tuple[str, float]) -> None:
    metric, fraction = compare.parse_max_regression(text)
    assert metric == expected[0]
    assert math.isclose(fraction, expected[1])


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("p95", "METRIC=PERCENT"),
        ("p95>10%", "METRIC=PERCENT"),
        ("p42=10%", "'p42'"),
        ("requests=10%", "'requests'"),
        ("p95=10", "'10'"),
        ("p95=abc", "'abc'"),
        ("p95=-5%", "'-5%'"),
        ("p95=", "''"),
        ("=10%", "METRIC=PERCENT"),
    ],
)
def test_malformed_max_regression_names_the_bad_part(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="invalid --max-regression") as raised:
        compare.parse_max_regression(text)
    assert named in str(raised.value)


def test_parse_max_regressions_last_wins_and_errors_are_validation() -> None:
    assert compare.parse_max_regressions(["p95=10%", "p95=20%", "rps=5%"]) == {
        "p95": 0.2,
        "rps": 0.05,
    }
    with pytest.raises(ValidationFailed):
        compare.parse_max_regressions(["p95=ten"])


@pytest.mark.parametrize(
    ("metric", "base", "value", "expected"),
    [
        ("p95", 100.0, 120.0, 0.2),
        ("p95", 100.0, 80.0, -0.2),
        ("rps", 100.0, 80.0, 0.2),
        ("rps", 100.0, 120.0, -0.2),
        ("error_rate", 0.0, 0.0, 0.0),
        ("error_rate", 0.0, 0.01, math.inf),
        ("rps", 0.0, 5.0, -math.inf),
        ("requests", 100.0, 10.0, None),
        ("p95", None, 10.0, None),
    ],
)
def test_worse_by(metric: str, base: float | None, value: float, expected: float | None) -> None:
    assert compare.worse_by(metric, base, value) == (
        pytest.approx(expected) if expected is not None and math.isfinite(expected) else expected
    )


def test_compare_marks_regressions_beyond_the_allowance(store: Store) -> None:
    test = _stored_test(store)
    first = make_run(test)
    second = make_run(test, final=final_stats(p95=150.0, rps=97.0, p50=30.0))
    intervals = [*steady_intervals(first), *steady_intervals(second, seed=1)]
    store_all(store.db, runs=[first, second], intervals=intervals)
    result = compare.compare_runs(store, [first.id, second.id], max_regression={"p95": 0.3})
    assert not result.different_tests and result.without_final == []
    rows = {(r["request"], r["metric"], r["position"]): r for r in result.rows}
    p95 = rows[("Aggregated", "p95", 1)]
    assert (p95["value"], p95["baseline"], p95["change"]) == (150.0, 120.0, 30.0)
    assert p95["relativeChange"] == pytest.approx(0.25)
    assert p95["regression"] is False  # 25% worse, 30% allowed
    assert rows[("Aggregated", "rps", 1)]["regression"] is False  # 3% < 5% tolerance
    assert rows[("Aggregated", "p50", 1)]["regression"] is False  # better
    assert rows[("GET /api/items", "p95", 1)]["value"] == 150.0
    assert rows[("Aggregated", "requests", 0)]["value"] == 10_000
    assert all(not r["regression"] for r in result.rows if r["position"] == 0)

    strict = compare.compare_runs(store, [first.id, second.id], tolerance=0.0)
    flagged = {(r["request"], r["metric"]) for r in strict.rows if r["regression"]}
    assert ("Aggregated", "p95") in flagged and ("Aggregated", "rps") in flagged
    assert ("Aggregated", "p50") not in flagged and ("Aggregated", "requests") not in flagged


def test_compare_several_runs_of_different_tests(store: Store) -> None:
    one, two = _stored_test(store, "one"), _stored_test(store, "two")
    runs = [make_run(one), make_run(two), make_run(one, status="Running", finalStats=None)]
    store_all(store.db, runs=runs)
    result = compare.compare_runs(store, [r.id for r in runs])
    assert result.different_tests
    assert result.without_final == [runs[2].id]
    assert {r["runId"] for r in result.rows} == {r.id for r in runs}
    assert all(r["value"] is None for r in result.rows if r["runId"] == runs[2].id)


def test_compare_needs_two_known_runs(store: Store) -> None:
    test = _stored_test(store)
    run = make_run(test)
    store_all(store.db, runs=[run])
    with pytest.raises(ValidationFailed, match="at least two"):
        compare.compare_runs(store, [run.id])
    with pytest.raises(NotFound):
        compare.compare_runs(store, [run.id, "missing"])


def test_set_baseline_stores_it_with_the_version(store: Store) -> None:
    test = _stored_test(store)
    run = make_run(test)
    store_all(store.db, runs=[run])
    updated = compare.set_baseline(store, "checkout", run.id, "alice")
    assert updated.baselineRunId == run.id
    assert updated.version == test.version + 1 and updated.updatedBy == "alice"
    stored = store.db["load_tests"].find_one({"id": test.id})
    assert stored is not None and stored["baselineRunId"] == run.id
    assert compare.baseline_run(store, "checkout").id == run.id
    cleared = compare.clear_baseline(store, test.id, "alice")
    assert cleared.baselineRunId is None


def test_set_baseline_refuses_wrong_runs(store: Store) -> None:
    test, other = _stored_test(store), _stored_test(store, "other")
    foreign = make_run(other)
    running = make_run(test, status="Running", finalStats=None, finishedAt=None)
    failed = make_run(test, status="Failed", finalStats=None)
    store_all(store.db, runs=[foreign, running, failed])
    with pytest.raises(ValidationFailed, match="another test"):
        compare.set_baseline(store, "checkout", foreign.id, "alice")
    for run in (running, failed):
        with pytest.raises(ValidationFailed, match="finished"):
            compare.set_baseline(store, "checkout", run.id, "alice")
    with pytest.raises(NotFound):
        compare.set_baseline(store, "checkout", "missing", "alice")
    with pytest.raises(NotFound):
        compare.set_baseline(store, "missing", foreign.id, "alice")
    stored = store.db["load_tests"].find_one({"id": test.id})
    assert stored is not None and stored.get("baselineRunId") is None and stored["version"] == 1


def test_set_baseline_keeps_a_concurrent_change(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone updating the description meanwhile: both changes land (update_test's retry)."""
    test = _stored_test(store)
    run = make_run(test)
    store_all(store.db, runs=[run])
    original = store.tests.update
    raced = []

    def racing_update(test_id: str, version: int, changes: dict[str, object]) -> object:
        if not raced:
            raced.append(True)
            original(test_id, version, {"description": "changed meanwhile"})
        return original(test_id, version, changes)

    monkeypatch.setattr(store.tests, "update", racing_update)
    updated = compare.set_baseline(store, "checkout", run.id, "alice")
    assert updated.baselineRunId == run.id and updated.description == "changed meanwhile"


def test_baseline_run_errors(store: Store) -> None:
    test = _stored_test(store)
    with pytest.raises(ValidationFailed, match="no baseline") as raised:
        compare.baseline_run(store, "checkout")
    assert raised.value.hint and "tests baseline" in raised.value.hint
    store.db["load_tests"].update_one({"id": test.id}, {"$set": {"baselineRunId": "gone"}})
    with pytest.raises(NotFound, match="no longer exists"):
        compare.baseline_run(store, "checkout")


def test_check_regressions_against_the_baseline(store: Store) -> None:
    test = _stored_test(store)
    base = make_run(test, final=final_stats(p95=100.0, rps=100.0, failures=0))
    worse = make_run(test, final=final_stats(p95=125.0, rps=95.0, failures=50))
    intervals = [*steady_intervals(base), *steady_intervals(worse, seed=1)]
    store_all(store.db, runs=[base, worse], intervals=intervals)
    compare.set_baseline(store, test.id, base.id, "alice")

    found = compare.check_regressions(store, worse, {"p95": 0.10, "rps": 0.10})
    assert [r.metric for r in found] == ["p95"]
    assert found[0].worse_by == pytest.approx(0.25) and found[0].allowed == 0.10
    assert "p95 is 25.0% worse than the baseline" in found[0].describe()
    assert compare.check_regressions(store, worse, {"p95": 0.30}) == []

    from_zero = compare.check_regressions(store, worse, {"error_rate": 0.5})
    assert from_zero and math.isinf(from_zero[0].worse_by or 0)
    assert from_zero[0].to_document()["worseBy"] is None  # JSON has no infinity

    checks = compare.baseline_checks(store, worse, {"p95": 0.5, "p90": 0.1})
    assert [c.regressed for c in checks] == [False, False]
    assert compare.check_regressions(store, base, {"p95": 0.0}) == []


def test_check_regressions_needs_a_finished_run_and_a_baseline(store: Store) -> None:
    test = _stored_test(store)
    run = make_run(test)
    running = make_run(test, status="Running", finalStats=None)
    store_all(store.db, runs=[run, running])
    with pytest.raises(ValidationFailed, match="no baseline"):
        compare.check_regressions(store, run, {"p95": 0.1})
    compare.set_baseline(store, test.id, run.id, "alice")
    with pytest.raises(ValidationFailed, match="no final stats"):
        compare.check_regressions(store, running, {"p95": 0.1})
    with pytest.raises(ValidationFailed, match="requests"):
        compare.check_regressions(store, run, {"requests": 0.1})


def test_set_baseline_conflict_surfaces(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    test = _stored_test(store)
    run = make_run(test)
    store_all(store.db, runs=[run])
    original = store.tests.update

    def clashing(test_id: str, version: int, changes: dict[str, object]) -> object:
        original(test_id, version, {"baselineRunId": "someone-else"})
        return original(test_id, version, changes)

    monkeypatch.setattr(store.tests, "update", clashing)
    with pytest.raises(Conflict):
        compare.set_baseline(store, "checkout", run.id, "alice")
