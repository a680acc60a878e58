"""The significance of a comparison (issue 24): the rank test, the detectable change, the
floors, and what a change beyond its limit is, on synthetic samples with fixed seeds and
on synthetic runs written through the store."""

from __future__ import annotations

import random

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.errors import ValidationFailed
from loadmgr.models import LoadTestRun, Scope
from loadmgr.models.stats.catalog import COMPARED, REGRESSION
from loadmgr.service.analysis import compare
from loadmgr.service.analysis.regressions import Floor, floor_of, judge, parse_floor
from loadmgr.service.analysis.significance import (
    MIN_SAMPLES,
    Significance,
    detectable_change,
    mann_whitney_u,
    significance,
)
from loadmgr.store import Store
from tests.metrics_data import final_stats, make_run, make_test, steady_intervals, store_all

PAIRS = 20
INTERVALS = 60  # a 5-minute run of 5-s intervals


def _noisy(rng: random.Random, centre: float, count: int = INTERVALS) -> list[float]:
    """Per-interval p95s within ±10 % of `centre` (uniform), as a target with ±10 % random
    latency gives."""
    return [centre * (1 + rng.uniform(-0.1, 0.1)) for _ in range(count)]


def test_the_rank_test_is_scipys_mann_whitney_u() -> None:
    stats = pytest.importorskip("scipy.stats")
    for seed in range(100):
        rng = random.Random(seed)
        before = [round(rng.gauss(10, 2)) for _ in range(rng.randint(5, 50))]  # ties
        after = [round(rng.gauss(10.5, 2)) for _ in range(rng.randint(5, 50))]
        u, p_value = mann_whitney_u(before, after)
        theirs = stats.mannwhitneyu(after, before, method="asymptotic")
        assert u == pytest.approx(theirs.statistic, abs=1e-9)
        assert p_value == pytest.approx(theirs.pvalue, abs=1e-9)
    assert mann_whitney_u([5.0] * 6, [5.0] * 6)[1] == 1.0  # all alike: nothing to tell


def test_twenty_pairs_from_the_same_distribution_give_no_regression() -> None:
    """Same ±10 % distribution: a 5 % test may call 1 in 20 significant by chance, but a
    regression also needs the change of the numbers beyond its 10 % limit, which noise
    averaged over a run never reaches."""
    for pair in range(PAIRS):
        rng = random.Random(pair)
        before, after = _noisy(rng, 100.0), _noisy(rng, 100.0)
        change = sorted(after)[len(after) // 2] - sorted(before)[len(before) // 2]
        tested = significance(before, after, change=change, reference=100.0)
        worse = change / 100.0
        assert not judge(worse, 0.10, change, 1.0, tested).regression, pair


def test_a_30_percent_step_is_significant_in_each_of_twenty_pairs() -> None:
    for pair in range(PAIRS):
        rng = random.Random(1000 + pair)
        before, after = _noisy(rng, 100.0), _noisy(rng, 130.0)
        tested = significance(before, after, change=30.0, reference=100.0)
        assert tested.significant and tested.p_value is not None and tested.p_value < 1e-6
        assert judge(0.30, 0.10, 30.0, 1.0, tested).regression, pair
        # The detectable change is far below the step: these runs could see it.
        assert tested.detectable is not None and tested.detectable < 0.05


def test_4ms_to_6ms_between_near_identical_runs_is_not_significant() -> None:
    """The issue's example: p95 4 ms → 6 ms (+50 %) between two runs whose intervals
    overlap (p95 of 5 ms ± 60 % in both): reported "not significant", the check
    inconclusive, never a regression. The floor is lowered to let the test decide."""
    rng = random.Random(24)
    before = [5.0 * (1 + rng.uniform(-0.6, 0.6)) for _ in range(INTERVALS)]
    after = [5.0 * (1 + rng.uniform(-0.6, 0.6)) for _ in range(INTERVALS)]
    tested = significance(before, after, change=2.0, reference=4.0)
    assert tested.significant is False and tested.p_value is not None and tested.p_value > 0.05
    judged = judge(0.5, 0.10, 2.0, 0.5, tested)
    assert (judged.regression, judged.inconclusive, judged.note) == (
        False,
        True,
        "not significant",
    )
    # The detectable change says why: these runs could only see about a 20 % change.
    assert tested.detectable is not None and 0.1 < tested.detectable < 0.5


def test_a_significant_shift_the_other_way_is_not_this_change() -> None:
    rng = random.Random(3)
    before, after = _noisy(rng, 100.0), _noisy(rng, 70.0)
    assert significance(before, after, change=+5.0, reference=100.0).significant is False
    assert significance(before, after, change=-30.0, reference=100.0).significant is True


@pytest.mark.parametrize(("before", "after"), [(4, 60), (60, 4), (0, 0), (MIN_SAMPLES - 1,) * 2])
def test_too_few_intervals_to_test_say_so_and_are_inconclusive_beyond_the_limit(
    before: int, after: int
) -> None:
    tested = significance([1.0] * before, [2.0] * after, change=1.0, reference=1.0)
    assert tested.significant is None and tested.p_value is None
    assert tested.note is not None and "too few steady intervals" in tested.note
    assert judge(1.0, 0.10, 10.0, 1.0, tested).inconclusive
    assert not judge(0.05, 0.10, 10.0, 1.0, tested).inconclusive  # within its limit


def test_the_detectable_change_grows_with_the_spread_and_shrinks_with_samples() -> None:
    rng = random.Random(5)
    narrow = detectable_change(_noisy(rng, 100.0), _noisy(rng, 100.0), 100.0)
    wide = detectable_change(
        [100 * (1 + rng.uniform(-0.5, 0.5)) for _ in range(INTERVALS)],
        [100 * (1 + rng.uniform(-0.5, 0.5)) for _ in range(INTERVALS)],
        100.0,
    )
    short = detectable_change(_noisy(rng, 100.0, 6), _noisy(rng, 100.0, 6), 100.0)
    assert narrow is not None and wide is not None and short is not None
    assert narrow < short and narrow < wide
    assert detectable_change([1.0], [1.0, 2.0], 1.0) is None
    assert detectable_change([1.0, 2.0], [1.0, 2.0], 0.0) is None


_SIGNIFICANT = Significance(True, 1e-9, 0.01, (60, 60))


@settings(max_examples=200, derandomize=True)
@given(
    metric=st.sampled_from(REGRESSION),
    base=st.floats(min_value=0.001, max_value=1e6),
    fraction=st.floats(min_value=0.0, max_value=1.0),
)
def test_a_change_below_the_floor_is_never_counted(
    metric: str, base: float, fraction: float
) -> None:
    """Whatever its percentage and however significant: at or below the metric's floor
    (the catalog's: 1 ms for latencies, 1 % of the reference's rps…), never a regression
    nor inconclusive."""
    floor = floor_of(metric, base, {})
    change = floor * fraction
    worse = change / base
    judged = judge(worse if worse > 0 else 10.0, 0.0, change, floor, _SIGNIFICANT)
    assert not judged.regression and not judged.inconclusive


def test_every_judged_metric_has_a_floor() -> None:
    for m in COMPARED:
        if m.better is not None:
            assert m.floor > 0 or m.floor_of_base > 0, m.name
    assert floor_of("p95", 4.0, {}) == 1.0
    assert floor_of("rps", 200.0, {}) == pytest.approx(2.0)
    assert floor_of("server.cpu", 2.0, {}) == pytest.approx(0.02)
    assert floor_of("p95", 4.0, {"p95": Floor(absolute=3.0)}) == 3.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p95=2ms", ("p95", Floor(absolute=2.0))),
        ("p95=0.5s", ("p95", Floor(absolute=500.0))),
        ("p99=3", ("p99", Floor(absolute=3.0))),
        ("rps=2%", ("rps", Floor(of_base=0.02))),
        ("rps=5/s", ("rps", Floor(absolute=5.0))),
        ("error_rate=0.002", ("error_rate", Floor(absolute=0.002))),
        (" AVG = 0 ", ("avg", Floor())),
        ("server.cpu=0.1", ("server.cpu", Floor(absolute=0.1))),
    ],
)
def test_parse_floor(text: str, expected: tuple[str, Floor]) -> None:
    assert parse_floor(text, REGRESSION) == expected


@pytest.mark.parametrize(
    "text", ["p95", "p95=", "p95=-1ms", "p95=abc", "p42=1ms", "requests=5", "rps=inf", "p95=nan%"]
)
def test_a_bad_floor_is_one_line_naming_it(text: str) -> None:
    with pytest.raises(ValidationFailed, match="invalid --floor"):
        parse_floor(text, REGRESSION)


# -- through the store: synthetic stored runs -------------------------------------------


def _store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


@pytest.fixture
def store() -> Store:
    return _store()


STORED_INTERVALS = 20


def _pair(store: Store, seed: int, after_p95: float) -> tuple[LoadTestRun, LoadTestRun]:
    test = make_test(f"t{seed}")
    base = make_run(test, final=final_stats(p95=100.0))
    run = make_run(test, final=final_stats(p95=after_p95))
    intervals = [
        *steady_intervals(base, STORED_INTERVALS, noise=0.10, seed=seed),
        *steady_intervals(run, STORED_INTERVALS, noise=0.10, seed=seed + 1),
    ]
    store_all(store.db, test, [base, run], intervals)
    return base, run


def test_twenty_stored_pairs_judged_against_their_baseline() -> None:
    """Baseline checks over stored intervals: a 30 % p95 step is a significant regression
    in each of 20 pairs; the same p95 ±10 % is none in each."""
    for pair in range(PAIRS):
        store = _store()  # mongomock reads every document of a collection per query
        base, run = _pair(store, 2 * pair, 130.0)
        (check,) = compare.compare_with_baseline(store, base, run, {"p95": 0.10})
        assert check.regressed and check.significant and check.test == "mann-whitney-u"
        assert check.p_value is not None and check.p_value < 0.05
        same, again = _pair(store, 2 * pair + 1, 100.0)
        (check,) = compare.compare_with_baseline(store, same, again, {"p95": 0.10})
        assert not check.regressed and not check.inconclusive, pair


def test_metrics_compare_rows_say_whether_a_change_is_significant(store: Store) -> None:
    base, run = _pair(store, 7, 130.0)
    rows = compare.compare_runs(store, [base.id, run.id], tolerance=0.10).rows
    (p95,) = [
        r for r in rows if (r["request"], r["metric"], r["position"]) == ("Aggregated", "p95", 1)
    ]
    assert p95["regression"] and p95["significant"] and p95["test"] == "mann-whitney-u"
    assert p95["pValue"] < 0.05 and 0 < p95["detectable"] < 0.3 and p95["floor"] == 1.0
    assert not any(r["regression"] for r in rows if r["metric"] != "p95")


def test_a_run_without_intervals_is_inconclusive_beyond_the_limit(store: Store) -> None:
    test = make_test()
    base = make_run(test, final=final_stats(p95=100.0))
    run = make_run(test, final=final_stats(p95=150.0))
    store_all(store.db, test, [base, run])
    result = compare.compare_runs(store, [base.id, run.id])
    assert result.regressions == [] and "p95 (Aggregated)" in result.inconclusive
    (p95,) = [
        r
        for r in result.rows
        if r["metric"] == "p95" and r["position"] == 1 and r["request"] == "Aggregated"
    ]
    assert p95["significant"] is None and "too few steady intervals" in p95["note"]


def test_the_warm_up_and_spawning_are_no_steady_intervals(store: Store) -> None:
    from loadmgr.service.analysis.samples import steady_samples

    test = make_test()
    run = make_run(test, warmupSec=20)
    intervals = steady_intervals(run, 12)
    intervals[5].state = "spawning"
    intervals[6].gap = True
    store_all(store.db, test, [run], intervals)
    samples = steady_samples(store, run, ["p95"])
    # 5-s intervals from the run's start: the first four start within its 20-s warm-up
    # (windowStart = timestamp - 5 s), one spawning, one a gap.
    assert len(samples[(None, "p95")]) == 12 - 4 - 2
